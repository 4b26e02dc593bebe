"""llama-cpp-python's OpenAI-compatible server, as `llamacpp:` specs start it.

    python -m societas.llm.llamacpp_server --model FILE.gguf --host H --port P [server options]

Two things differ from `python -m llama_cpp.server`: weights are loaded with
`use_extra_bufts = False` (llama.cpp's AMX kernels crash in
`ggml_backend_amx_mul_mat` on some CPUs when weights go to its extra buffer
types), and `GET /health` answers 200 once the model is loaded, so the server
supervisor waits on it as it does on vLLM and llama-server.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def _no_extra_buffer_types() -> None:
    import llama_cpp
    import llama_cpp.llama

    default = llama_cpp.llama_model_default_params

    def params() -> object:
        p = default()
        if hasattr(p, "use_extra_bufts"):
            p.use_extra_bufts = False
        return p

    llama_cpp.llama_model_default_params = params
    llama_cpp.llama.llama_cpp.llama_model_default_params = params


def main(argv: Sequence[str] | None = None) -> None:
    try:
        import uvicorn
        from llama_cpp.server import __main__ as cli
    except ImportError:
        sys.exit("llamacpp: specs need llama.cpp's server: pip install 'llama-cpp-python[server]', "
                 "or put a llama-server binary on PATH")
    _no_extra_buffer_types()
    sys.argv = [sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    captured: dict[str, object] = {}

    def run(app: object, **kwargs: object) -> None:
        captured["app"] = app
        captured.update(kwargs)

    real_run, uvicorn.run = uvicorn.run, run
    try:
        cli.main()  # parses the options and builds the app (the model loads here)
    finally:
        uvicorn.run = real_run
    app = captured.pop("app")

    @app.get("/health")  # type: ignore[attr-defined]
    def health() -> dict[str, str]:
        return {"status": "ok"}

    real_run(app, **captured)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
