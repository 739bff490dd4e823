"""The model zoo: the catalogue of shipped and user models and their cards (``catalog``), the
weights-file format (``weights_file``), loading networks (``loading``) and managing the user's
own models (``user_models``)."""

from .catalog import (
    DEFAULT_POSTPROCESS,
    SHIPPED_DIR,
    ModelEntry,
    default_model_name,
    get_entry,
    list_models,
    suggested_for,
    unsure_below_of,
    user_models_dir,
)
from .loading import load_model
from .user_models import (
    check_name,
    delete_user_model,
    export_model,
    import_model,
    rename_user_model,
    save_user_model,
)
from .weights_file import load_weights_file, read_blob, save_weights

__all__ = [
    "DEFAULT_POSTPROCESS", "ModelEntry", "SHIPPED_DIR", "check_name", "default_model_name",
    "delete_user_model", "export_model", "get_entry", "import_model", "list_models", "load_model",
    "load_weights_file", "read_blob", "rename_user_model", "save_user_model", "save_weights",
    "suggested_for", "unsure_below_of", "user_models_dir",
]
