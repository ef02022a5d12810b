"""The ``w2sprobe`` command line: thin typer wrappers that parse, call the library, and print."""
