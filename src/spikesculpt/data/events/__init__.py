"""The event pipeline: event streams, the DVS emulator, file formats, events -> frames, the frame
cache, and frames -> train / validation / test splits.

- ``stream.py``: the event array (``EVENT_DTYPE``: ``t`` µs, ``x``, ``y``, ``p``) and its checks;
- ``dvs_emulator.py``: static images -> events (``DVSEmulator``, ``simulate_pixels``);
- ``aedat2.py``: the jAER AEDAT 2.0 format (DVS128 addresses);
- ``frames.py``: events -> ``T`` frames of counts (``events_to_frames``);
- ``frame_cache.py``: binned frames on disk, keyed by everything that changes them;
- ``frame_dataset.py``: cached frames -> ``DataSplits`` (in memory or memory-mapped);
- ``recordings.py``: a reader's list of recordings -> cached frames -> splits.

The dataset readers (``spikesculpt.data.sets``) build on this package; it imports none of them.
"""

from spikesculpt.data.events.dvs_emulator import DVSEmulator, simulate_pixels
from spikesculpt.data.events.frames import events_to_frames
from spikesculpt.data.events.stream import EVENT_DTYPE, check_events, empty_events, make_events

__all__ = ["EVENT_DTYPE", "DVSEmulator", "check_events", "empty_events", "events_to_frames",
           "make_events", "simulate_pixels"]
