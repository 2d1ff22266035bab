"""Drop-in compatibility, server side: OpenRouter's chat completions and Image API, OpenAI's
Images API.

Pure mapping code, no I/O: parsing what those clients send (``openrouter_request``,
``openrouter_images``, ``openai_images``), building what they expect back
(``openrouter_response``, ``openrouter_images``, ``openai_images``, ``models``), and the
errors in their shapes (``errors``).  The routes in ``server/routes/compat_*.py`` do the
I/O: they turn a parsed call into a job of the job service (the caller's stored keys, the
service's fallback, the caller's history) and hand the finished job, as a plain
``JobOutcome``, to the builders here.

Large images never go through a JSON encoder as strings: the builders encode the bytes with
pybase64 and splice them into the JSON text (``splice``).
"""
