"""The model zoo: shipped and user models, their cards (``entry``), weights files
(``weights_file``) and the user's own models (``user_models``)."""

from .entry import DEFAULT_POSTPROCESS, ModelEntry
from .registry import SHIPPED_DIR, default_model_name, get_entry, list_models, load_model
from .user_models import (
                          check_name,
                          delete_user_model,
                          export_model,
                          import_model,
                          rename_user_model,
                          save_user_model,
                          user_models_dir,
)
from .weights_file import load_weights_file, read_blob, save_weights

__all__ = [
    "DEFAULT_POSTPROCESS", "ModelEntry", "SHIPPED_DIR", "check_name", "default_model_name",
    "delete_user_model", "export_model", "get_entry", "import_model", "list_models", "load_model",
    "load_weights_file", "read_blob", "rename_user_model", "save_user_model", "save_weights",
    "user_models_dir",
]
