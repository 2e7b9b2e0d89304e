"""Framework loaders over verified bytes: each loads exactly what was verified.

* :mod:`provenance.loaders.safetensors`: ``load_file`` / ``load_folder``,
  numpy or torch tensors built over the verified memory, zero-copy
  (``pip install 'ml-provenance[numpy]'`` for numpy).
* :mod:`provenance.loaders.transformers`: ``from_pretrained(cls, path, policy=...)``
  for models, tokenizers and configs; :mod:`provenance.loaders.peft` for
  adapters (``pip install 'ml-provenance[transformers]'``, with your torch).

Each verifies the whole model first (:func:`provenance.open_verified`) and
never opens the model's files by path afterwards.
"""
