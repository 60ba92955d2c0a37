"""secretsctl: the operator's command line for secrets, rotation and Parameter Store.

``cli.py`` holds the click group and global options; one module per command group registers its
commands; the logic they share (``session``, ``output``, ``confirm``, ...) is plain Python that tests
call without a terminal.
"""
