"""Model files loaded without running their code: skops only, this project's own types, the digest recorded.

Concept: model supply-chain security (C44). A pickle (or cloudpickle) file is a program: loading it
runs whatever it was written to run, and MLflow's sklearn loader honours whatever format and trusted
types the artifact's own ``MLmodel`` file declares. Anyone who can write to the registry could so run
code in every serving replica. Every registered model is therefore read here, never by MLflow's loader:

- the artifact must be skops (a zip of arrays and a JSON schema; nothing is unpickled), named by a
  plain file name inside the model folder;
- skops rebuilds only types from this project's list (`TRUSTED_MODULE_PREFIXES`), never the list the
  artifact brings along;
- the file's sha256 must match the digest recorded on the model version when it was registered
  (``pipelines.registry.register_candidate``), so a file replaced in the artifact store is refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.digests import file_sha256

# Module prefixes whose types this project's own pipelines contain. A skops file asking for a type
# outside them was not written by our training code and is refused rather than trusted.
TRUSTED_MODULE_PREFIXES = ("sklearn.", "numpy.", "pipelines.")
MODEL_FORMAT = "skops"


class UntrustedModelError(RuntimeError):
    """A model file that is not skops, needs types this project never writes, or is not the file registered."""


def read_mlmodel(model_dir: Path) -> dict[str, Any]:
    """The ``MLmodel`` file of an MLflow model folder, parsed (YAML, safe loader).

    Raises:
        UntrustedModelError: the folder has no MLmodel file.
    """
    import yaml

    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        raise UntrustedModelError(f"{model_dir} has no MLmodel file: not an MLflow model")
    return yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}


def model_file(model_dir: Path, mlmodel: dict[str, Any] | None = None) -> Path:
    """The skops file of an MLflow sklearn model folder, after checking its ``MLmodel`` declares nothing else.

    Raises:
        UntrustedModelError: no sklearn flavour, another serialization format, or a file outside the folder.
    """
    flavor = (mlmodel if mlmodel is not None else read_mlmodel(model_dir)).get("flavors", {}).get("sklearn") or {}
    fmt, name = flavor.get("serialization_format"), str(flavor.get("pickled_model") or "")
    if fmt != MODEL_FORMAT:
        raise UntrustedModelError(
            f"model in {model_dir} is serialized as {fmt!r}; only {MODEL_FORMAT!r} is loaded, because loading a "
            "pickle runs the code inside it. Retrain it with `mlops-lab train`."
        )
    if not name or Path(name).name != name:
        raise UntrustedModelError(f"model in {model_dir} names its file {name!r}: a plain file name is required")
    return model_dir / name


def load_skops_file(path: Path) -> Any:
    """Load a skops file, trusting only the types of this project's modules.

    Raises:
        UntrustedModelError: the file asks for types from other modules (it was not written by our code).
    """
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    foreign = [t for t in untrusted if not t.startswith(TRUSTED_MODULE_PREFIXES)]
    if foreign:
        raise UntrustedModelError(
            f"{path} needs types outside {TRUSTED_MODULE_PREFIXES}: {foreign}; it was not written by this "
            "project's training code and is not loaded."
        )
    return sio.load(path, trusted=untrusted)


def check_signature(mlmodel: dict[str, Any], features: Sequence[str], label: str) -> None:
    """Refuse a model whose input signature is not exactly the data contract's features (any order).

    A model trained on other columns would load, then answer 500 on every request routed to it.

    Raises:
        UntrustedModelError: no signature, or other inputs; names what is missing and what is extra.
    """
    signature = mlmodel.get("signature") or {}
    try:
        inputs = [str(spec["name"]) for spec in json.loads(signature.get("inputs") or "[]")]
    except (ValueError, KeyError, TypeError) as err:
        raise UntrustedModelError(f"{label}: its input signature cannot be read ({err})") from err
    missing, extra = sorted(set(features) - set(inputs)), sorted(set(inputs) - set(features))
    if missing or extra or len(inputs) != len(features):
        raise UntrustedModelError(
            f"{label} does not take the data contract's features: missing {missing or 'none'}, extra "
            f"{extra or 'none'}; it is not served. Retrain it on the contract's columns."
        )


def load_verified_model(
    model_dir: Path, expected_sha256: str | None, label: str, features: Sequence[str] | None = None
) -> Any:
    """Load the model of an MLflow model folder if it is skops, our own types, and the file that was registered.

    Args:
        model_dir: the local model folder (``MLmodel`` and the skops file).
        expected_sha256: the digest recorded at registration; None refuses (a version registered without one).
        label: how the model is named in errors (e.g. ``iris-classifier v3``).
        features: the data contract's features; when given, the signature must take exactly these.

    Raises:
        UntrustedModelError: any check failed; the message names the model and what failed.
    """
    mlmodel = read_mlmodel(model_dir)
    path = model_file(model_dir, mlmodel)
    if features is not None:
        check_signature(mlmodel, features, label)
    if not expected_sha256:
        raise UntrustedModelError(
            f"{label} has no model_sha256 tag: it was not registered by this project's registry code, so its file "
            "cannot be checked; register it again through `mlops-lab train`"
        )
    actual = file_sha256(path)
    if actual != expected_sha256:
        raise UntrustedModelError(
            f"{label}: {path.name} has sha256 {actual[:12]}…, but {expected_sha256[:12]}… was registered; the file "
            "was replaced after registration and is not loaded"
        )
    return load_skops_file(path)
