"""Process start-up, checked in fresh interpreters so that import order is real.

- TensorFlow bundles a libcurl whose symbols shadow curl-impersonate's: once TF is loaded first,
  every impersonated curl_cffi request (yfinance's transport) fails with ImpersonateError. cryptovol
  loads curl_cffi before TensorFlow (cryptovol.config.load_tensorflow), so after
  `import cryptovol.train` a request to a closed local port must fail with a *connection* error.
- Importing the package's TensorFlow modules prints none of TensorFlow's start-up lines (CUDA probe,
  absl notes).
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter: import `entry`, check TF is loaded, then an impersonated request to a
# port nobody listens on (found by binding and closing a socket on 127.0.0.1). Prints one JSON line
# with what happened.
PROBE = textwrap.dedent("""
    import json, socket, sys
    {entry}
    assert "tensorflow" in sys.modules, "the entry point did not load TensorFlow"
    from curl_cffi import requests
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    try:
        requests.get(f"http://127.0.0.1:{{port}}/", impersonate="chrome", timeout=10)
        out = {{"error": None}}
    except Exception as e:
        out = {{"error": type(e).__name__, "module": type(e).__module__, "message": str(e)[:300]}}
    print("PROBE " + json.dumps(out))
""")


def _probe(entry: str) -> tuple[dict, str]:
    env = {k: v for k, v in __import__("os").environ.items() if not k.lower().endswith("_proxy")}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # what a user's shell has: nothing set
    r = subprocess.run(
        [sys.executable, "-c", PROBE.format(entry=entry)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    (line,) = [l for l in r.stdout.splitlines() if l.startswith("PROBE ")]
    return json.loads(line[len("PROBE ") :]), r.stderr


@pytest.mark.parametrize(
    "entry",
    [
        "import cryptovol.train",  # what cryptovol predict / train / the notebooks load
        "import cryptovol.model",
        # a user's own `import tensorflow` after the package
        "import cryptovol.cli\nimport tensorflow as tf",
    ],
)
def test_tensorflow_first_then_impersonated_request_is_a_connection_error(entry):
    out, stderr = _probe(entry)
    assert out["error"] != "ImpersonateError", f"TensorFlow shadowed curl-impersonate: {out}"
    assert out["error"] == "ConnectionError" and out["module"].startswith("curl_cffi"), out
    assert "Failed to connect" in out["message"] or "Could not connect" in out["message"], out


def test_bare_tensorflow_first_breaks_impersonation():
    """The control: without cryptovol's import order the same request fails with ImpersonateError
    (the bug is real)."""
    out, _ = _probe("import tensorflow")
    if out["error"] != "ImpersonateError":
        pytest.skip(
            f"this TensorFlow/curl_cffi pair no longer conflicts ({out['error']}); "
            "the preload is harmless"
        )
    assert "Impersonating" in out["message"]


def test_package_tensorflow_import_is_quiet():
    "No CUDA-probe lines, absl notes or TF info lines on stderr when the package loads TensorFlow."
    _, stderr = _probe("import cryptovol.train")
    noisy = [
        l
        for l in stderr.splitlines()
        if any(
            k in l
            for k in (
                "cudart_stub",
                "cuInit",
                "absl::InitializeLog",
                "cpu_feature_guard",
                "oneDNN",
                "Could not find cuda",
            )
        )
    ]
    assert noisy == [], "TensorFlow start-up lines reached the console:\n" + "\n".join(noisy)
