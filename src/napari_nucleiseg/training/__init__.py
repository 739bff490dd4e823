"""Teaching the networks: ``dataset`` (labelled samples), ``augment`` (batched crops and their
targets), ``losses``, ``trainer`` (the loop with resumable checkpoints) and ``finetune``
(learning from a user's corrected labels)."""
