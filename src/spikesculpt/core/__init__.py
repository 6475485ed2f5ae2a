"""The ground floor: what every other part uses and that uses nothing of spikesculpt —
``errors`` (the one ``UserError``), ``io`` (atomic writes), ``registry`` (name -> factory),
``native_build`` (compile a small C source on first use, cache it, load it with ctypes)."""
