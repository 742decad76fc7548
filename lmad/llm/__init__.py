"""Every LLM backend behind one interface, with retries, rate limits, a response cache and cost.

Use :func:`lmad.llm.client.open_client` to get an :class:`~lmad.llm.client.LLMClient` for a model
named in ``BigModel/models.yaml``.
"""
