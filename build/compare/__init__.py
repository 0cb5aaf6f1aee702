"""`make compare`: the static bootstrap (A) beside AWS's Python runtime, awslambdaric
4.2.2 (B), on the user's own function and events (cli.py's docstring says how).

One module each: events.py (EVENTS: the files, in name order), sides.py (A and B, and
one cold run of an event under the emulator, through make bench's Session), frames.py
(the stack trace frames of the function's own code), normalise.py (one run as it is
compared), known.py (the intended differences, each with its reason), diff.py (what
differs, and the verdict), report.py (the lines and --json), cli.py (the command; the
function's variables are build/function_env.py's, as the build declared them;
__main__.py calls it).
"""
