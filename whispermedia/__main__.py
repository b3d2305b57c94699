"""``python -m whispermedia``: the ``wm`` command."""

from whispermedia.cli import main

if __name__ == "__main__":
    main()
