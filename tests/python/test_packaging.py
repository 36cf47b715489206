"""Packaging: the type stubs cover the runtime API, and `pip install --no-build-isolation .` into a fresh venv that sees the system's torch, then use it.

Slow (it compiles the whole library: ~15-25 minutes on a 2-core machine, ~1 minute when
CONVIRT_TEST_PIP_BUILD_DIR points at an already built folder), so it runs only when
CONVIRT_TEST_PIP_INSTALL=1:

    CONVIRT_TEST_PIP_INSTALL=1 /usr/bin/python3 -m pytest -q tests/python/test_packaging.py
"""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PACKAGE = os.path.join(ROOT, "bindings", "python", "convirt")

pip_install = pytest.mark.skipif(os.environ.get("CONVIRT_TEST_PIP_INSTALL") != "1",
                                 reason="set CONVIRT_TEST_PIP_INSTALL=1 to build and pip-install the package")

SMOKE = textwrap.dedent("""
    import os, sys
    import torch
    import convirt, convirt.image, convirt.text, convirt.transforms, convirt.data
    assert "site-packages" in convirt.__file__, convirt.__file__
    print("version", convirt.__version__, "cuda", convirt.cuda_kernels_available)
    v = torch.randn(8, 16, requires_grad=True)
    u = torch.randn(8, 16)
    loss = convirt.infonce_loss(v, u)
    loss.backward()
    assert v.grad is not None and torch.isfinite(loss)
    x = convirt.transforms.paper_augmentation(size=32)(torch.rand(1, 48, 40), seed=1)
    assert x.shape == (1, 32, 32)
    tok = convirt.text.WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "no", "effusion"])
    assert tok.encode("no effusion") == [2, 5, 6, 3]
    assert convirt.data.synthetic_example(0, image_size=32)["image"].shape == (1, 32, 32)
    pkg = os.path.dirname(convirt.__file__)
    names = os.listdir(pkg)
    assert "py.typed" in names and "transforms.pyi" in names and "data.pyi" in names, names
    assert any(n.startswith("libconvirt_core.so") for n in names), names
    print("OK")
""")


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, text=True, **kw)


@pytest.mark.slow
@pip_install
def test_pip_install_into_venv(tmp_path):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
    python = str(venv / "bin" / "python")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the installed package, not build/python, must be imported
    env["CONVIRT_CMAKE_BUILD_DIR"] = os.environ.get("CONVIRT_TEST_PIP_BUILD_DIR", str(tmp_path / "cmake"))
    env.setdefault("CONVIRT_BUILD_JOBS", "2")
    run([python, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-index", ROOT],
        env=env, cwd=str(tmp_path))
    out = run([python, "-c", SMOKE], env=env, cwd=str(tmp_path), capture_output=True)
    assert "OK" in out.stdout, out.stdout + out.stderr
    # The installed libraries find each other through $ORIGIN, not the build folder.
    readelf = shutil.which("readelf")
    if readelf:
        site = run([python, "-c", "import convirt, os; print(os.path.dirname(convirt.__file__))"],
                   env=env, cwd=str(tmp_path), capture_output=True).stdout.strip()
        for name in os.listdir(site):
            if name.endswith(".so") or ".so." in name:
                dyn = run([readelf, "-d", os.path.join(site, name)], capture_output=True).stdout
                paths = [line for line in dyn.splitlines() if "RPATH" in line or "RUNPATH" in line]
                assert all("[$ORIGIN]" in line for line in paths), (name, paths)
    run([python, "-m", "pip", "uninstall", "-y", "convirt"], env=env, cwd=str(tmp_path))


# ------------------------------------------------------------------------------------------------
# Type stubs: every public name has a stub, and stub signatures use the runtime's parameter names.

def _stub_functions(path):
    """{name: [parameter names]} of the top-level defs and classes' __init__ in a .pyi, plus all names."""
    import ast
    tree = ast.parse(open(path, encoding="utf-8").read())
    names, params = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
        if isinstance(node, ast.FunctionDef):
            a = node.args
            params[node.name] = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
            params[node.name] += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    a = item.args
                    params[node.name] = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs][1:]
    return names, params


@pytest.mark.parametrize("module", ["image", "transforms", "text", "loss", "train", "models", "data",
                                    "eval", "dist"])
def test_stubs_cover_public_api(module):
    import importlib
    import inspect
    mod = importlib.import_module(f"convirt.{module}")
    stub = os.path.join(PACKAGE, f"{module}.pyi")
    names, params = _stub_functions(stub)
    missing = [n for n in mod.__all__ if n not in names]
    assert not missing, f"{module}.pyi lacks {missing}"
    for name, stub_params in params.items():
        obj = getattr(mod, name, None)
        if obj is None:
            continue
        target = obj.__init__ if inspect.isclass(obj) else obj
        try:
            sig = inspect.signature(target)
        except (TypeError, ValueError):
            continue  # pybind11 functions carry no Python signature
        runtime = [p for p in sig.parameters if p != "self"]
        assert runtime == stub_params, f"{module}.{name}: stub {stub_params} vs runtime {runtime}"


def test_package_metadata():
    import convirt
    assert os.path.exists(os.path.join(PACKAGE, "py.typed"))
    assert os.path.exists(os.path.join(PACKAGE, "_C.pyi"))
    with open(os.path.join(ROOT, "CMakeLists.txt"), encoding="utf-8") as f:
        assert f"VERSION {convirt.__version__}" in f.read()
    assert isinstance(convirt.cuda_kernels_available, bool)


def test_examples_run(tmp_path):
    """The Python examples still run (a few steps each)."""
    import convirt
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(convirt.__file__))
    env["PYTHONPATH"] = pkg_parent + os.pathsep + env.get("PYTHONPATH", "")
    examples = os.path.join(ROOT, "examples", "python")
    run([sys.executable, os.path.join(examples, "train_loop.py"), "--steps", "3", "--batch-size", "8",
         "--workers", "0", "--image-size", "32", "--studies", "40", "--eval-every", "0", "--out",
         str(tmp_path)], env=env, capture_output=True)
    state_dict = tmp_path / "resnet18_1ch.pt"
    assert state_dict.exists()
    out = run([sys.executable, os.path.join(examples, "use_with_torchvision.py"), "--state-dict",
               str(state_dict), "--epochs", "2", "--image-size", "32"], env=env, capture_output=True)
    assert "linear probe on the frozen encoder" in out.stdout
    out = run([sys.executable, os.path.join(examples, "pretrain_and_evaluate.py"), "--out",
               str(tmp_path / "e2e"), "--studies", "24", "--steps", "2", "--seeds", "1",
               "--image-size", "32"], env=env, capture_output=True)
    assert "pretrained: 2 steps" in out.stdout and "| convirt |" in out.stdout, out.stdout
    assert "image->sentence matches among" in out.stdout, out.stdout


# torch.compile: the loss module compiles where the installed torch has it (a feature test).

@pytest.mark.skipif(not hasattr(__import__("torch"), "compile"),
                    reason="torch.compile needs torch >= 2.0; the installed torch has none")
def test_infonce_loss_under_torch_compile():
    """aot_eager traces the module with fake tensors (the registered fake kernels) and runs the
    real ops; loss and gradients must equal eager mode's."""
    import torch
    import convirt
    torch.manual_seed(0)
    v = torch.randn(6, 8, requires_grad=True)
    u = torch.randn(6, 8, requires_grad=True)
    crit = convirt.InfoNCELoss(temperature=0.1, image_to_text_weight=0.75)
    eager = crit(v, u)
    gv, gu = torch.autograd.grad(eager, (v, u))
    compiled = torch.compile(crit, backend="aot_eager")
    loss = compiled(v, u)
    cv, cu = torch.autograd.grad(loss, (v, u))
    assert torch.allclose(loss, eager, atol=1e-6)
    assert torch.allclose(cv, gv, atol=1e-6) and torch.allclose(cu, gu, atol=1e-6)
