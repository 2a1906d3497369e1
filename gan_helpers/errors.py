"""The one exception a user can cause, and how it is shown."""


class GanError(Exception):
    """A mistake in what the user asked for: the message says what is wrong and what to do.

    The command line prints it as one sentence with no traceback; notebooks show it as an
    ordinary exception whose message is that sentence.
    """
