"""hookd benchmark harness: ``python -m bench`` (``make bench`` / ``make bench-quick``).

All benchmark traffic goes to 127.0.0.1 only; every load loop is bounded in count and time;
every child process is killed on exit.
"""
