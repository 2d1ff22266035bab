"""nanobanana as an MCP server: image generation as tools for agents (docs/mcp.md).

``tools`` defines the tools and their schemas over a ``Backend``, ``results`` what their
results hold; ``local`` is the backend of ``nanobanana mcp`` (stdio: the library, the images
saved in a folder), ``service`` the one of the web service's ``/mcp`` (each call a job of the
token's user).  The official ``mcp`` SDK speaks the protocol (the ``mcp`` extra).
"""
