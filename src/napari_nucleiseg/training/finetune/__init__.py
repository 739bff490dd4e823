"""Fine-tune a zoo model on a few corrected images and save it as a new user model.

The one function :func:`fine_tune` is called by the Fine-tune widget, by
``nucleiseg finetune`` and by the benchmark; it never imports Qt.

What it does, in order:

1. checks every (image, labels) pair (same shape, at least one nucleus, a free model name)
   before any training, so mistakes cost nothing (``run``, ``pairs``, ``naming``);
2. prepares the images exactly as ``segment()`` does, cuts out the corrected rectangle
   when one is given, and relabels connected components (labels painted with one value
   still give separate nuclei) (``pairs``);
3. trains a fresh copy of the base model with augmented random crops (so big images never
   need to fit in memory at once), a low learning rate with warm-up and cosine decay
   (``schedule``), frozen batch-norm statistics and a pull towards the base weights
   (``safeguards``), mixing in replay fields against forgetting (``replay``; the loop: ``loop``);
4. keeps the best weights reached: by the validation DSB score when validation pairs are
   given (the base model is scored first, so a worse model never wins), else by the
   lowest smoothed training loss; Cancel stops early and keeps them too (``selection``);
5. saves a new user model whose card names the parent, the images, the settings and both
   curves (``card``).

Images of one kind (``kinds.image_kind``) start from the model the base uses for that
kind (its specialist, if it has one), and the new model hands every other kind back to the
models that segmented it before (``start_and_routes``).
"""

from ...errors import EmptyLabelsError, FinetuneCancelled, FinetuneError, ModelNameError, ShapeMismatchError
from .naming import default_name, unique_name
from .pairs import prepare_pairs, start_and_routes
from .replay import replay_samples
from .result import DEFAULT_BLEND, DEFAULT_LR, DEFAULT_STEPS, FinetuneProgress, FinetuneResult
from .run import fine_tune
from .safeguards import blend_states

__all__ = [
    "DEFAULT_BLEND", "DEFAULT_LR", "DEFAULT_STEPS", "FinetuneProgress", "FinetuneResult",
    "blend_states", "default_name", "fine_tune", "prepare_pairs", "replay_samples", "start_and_routes",
    "unique_name",
    # the exceptions live in errors.py; these names keep older imports working
    "EmptyLabelsError", "FinetuneCancelled", "FinetuneError", "ModelNameError", "ShapeMismatchError",
]
