"""The one error type for bad user input.

A ``UserError`` carries a single line that names the problem and the fix. The CLI prints it to
stderr and exits with status 2, with no traceback. Library code raises it for anything a user can
get wrong (unknown names, out-of-range numbers, missing or corrupt files, wrong shapes).
"""


class UserError(ValueError):
    """Bad input from the user: one line, naming the problem and the fix."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
