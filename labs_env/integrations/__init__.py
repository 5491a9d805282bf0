"""Adapters to training libraries (the ``[train]`` extra); importing them never imports the
library, only calling them does.

- :mod:`~labs_env.integrations.trl` — a TRL ``GRPOTrainer`` ``rollout_func`` that plays Labs
  episodes with exact token ids (:class:`~labs_env.integrations.trl.LabsRollout`).
"""
