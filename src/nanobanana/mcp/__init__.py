"""nanobanana as an MCP server: image generation as tools for agents (docs/mcp.md).

``tools`` defines the tools, their schemas and what their results look like, over a
``Backend``; ``local`` is the backend of ``nanobanana mcp`` (stdio): the library, with the
images saved in a folder.  The official ``mcp`` SDK speaks the protocol (the ``mcp`` extra).
"""
