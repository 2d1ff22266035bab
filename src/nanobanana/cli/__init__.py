"""The ``nanobanana`` command line: one module per command group, heavy imports deferred.

``main.main`` builds the argparse tree from each module's ``register`` function; a command's
``run`` imports the library (aiohttp, Pillow, rich, google-genai) only when it runs, so
``nanobanana --help`` stays fast.
"""
