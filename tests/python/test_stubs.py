"""Every public name of every convirt submodule exists, has a docstring and has a type-stub entry.

The stubs (``convirt/<module>.pyi``) are parsed with ``ast``; a name added to a module's ``__all__``
without a stub entry, a stub entry for a name the module no longer has, or a public function or class
without a docstring fails here.

Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python/test_stubs.py
"""
import ast
import importlib
import inspect
import pathlib
import re
import types

import pytest

convirt = pytest.importorskip("convirt")

SUBMODULES = ["loss", "text", "image", "transforms", "models", "data", "eval", "train", "dist"]

# pybind11 puts the signature first in a docstring ("name(arg: type) -> type"); that alone is not
# documentation.
_SIGNATURE = re.compile(r"^\s*(\d+\.\s*)?[\w.]+\(.*\)( -> .*)?$")


def stub_names(path: pathlib.Path):
    """Top-level names a stub declares (functions, classes, annotated or assigned names, and
    re-exports from the package: ``from .image import Rng as Rng``)."""
    names = set()
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("convirt")):
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def documentation(obj) -> str:
    """The docstring without pybind11's signature lines."""
    doc = inspect.getdoc(obj) or ""
    lines = [l for l in doc.splitlines() if not _SIGNATURE.match(l) and l.strip() != "Overloaded function."]
    return "\n".join(lines).strip()


def needs_doc(obj) -> bool:
    return isinstance(obj, (type, types.ModuleType)) or callable(obj)


@pytest.mark.parametrize("name", SUBMODULES)
def test_public_surface_is_stubbed_and_documented(name):
    module = importlib.import_module(f"convirt.{name}")
    assert module.__doc__ and module.__doc__.strip(), f"convirt.{name} has no module docstring"
    public = list(module.__all__)
    assert len(public) == len(set(public)), f"convirt.{name}.__all__ repeats a name"
    missing = [n for n in public if not hasattr(module, n)]
    assert not missing, f"convirt.{name}.__all__ names what the module lacks: {missing}"

    stub = pathlib.Path(module.__file__).with_suffix(".pyi")
    assert stub.is_file(), f"no type stub {stub.name} for convirt.{name}"
    declared = stub_names(stub)
    assert "__all__" in declared, f"{stub.name} does not declare __all__"
    unstubbed = [n for n in public if n not in declared]
    assert not unstubbed, f"{stub.name} has no entry for {unstubbed}"

    undocumented = [n for n in public if needs_doc(getattr(module, n)) and not documentation(getattr(module, n))]
    assert not undocumented, f"convirt.{name}: no docstring for {undocumented}"


def test_stub_entries_name_real_objects():
    """A public name a stub declares must exist in its module (no stale stubs)."""
    for name in SUBMODULES:
        module = importlib.import_module(f"convirt.{name}")
        stub = pathlib.Path(module.__file__).with_suffix(".pyi")
        extra = sorted(n for n in stub_names(stub)
                       if not n.startswith("_") and not hasattr(module, n))
        assert not extra, f"{stub.name} declares names convirt.{name} lacks: {extra}"


def test_top_level_surface():
    for n in convirt.__all__:
        assert hasattr(convirt, n), n
        obj = getattr(convirt, n)
        if needs_doc(obj):
            assert documentation(obj), f"convirt.{n} has no docstring"
    assert set(SUBMODULES) - {"loss"} <= set(convirt.__all__)
    assert isinstance(convirt.__version__, str) and re.match(r"^\d+\.\d+\.\d+", convirt.__version__)
    assert isinstance(convirt.cuda_kernels_available, bool)


def test_stub_parser_sees_a_missing_entry(tmp_path):
    """The check above can fail: a stub without an entry is reported."""
    p = tmp_path / "m.pyi"
    p.write_text("from typing import List\nfrom .image import Rng as Rng\ndef f() -> int: ...\n"
                 "class C: ...\nX: int\n__all__: List[str]\n")
    assert stub_names(p) == {"f", "C", "X", "Rng", "__all__"}
    assert "g" not in stub_names(p)
    assert documentation(len) and not documentation(type("Undocumented", (), {}))


# -- every public name is exercised by some test -------------------------------------------------

def test_every_public_name_is_exercised_by_a_test():
    """Each name in a submodule's __all__ (and convirt.__all__) appears in at least one test file."""
    tests = pathlib.Path(__file__).parent
    text = "\n".join(p.read_text() for p in tests.glob("test_*.py"))
    unused = []
    for name in SUBMODULES:
        module = importlib.import_module(f"convirt.{name}")
        unused += [f"{name}.{n}" for n in module.__all__ if not re.search(rf"\b{re.escape(n)}\b", text)]
    unused += [n for n in convirt.__all__ if not re.search(rf"\b{re.escape(n)}\b", text)]
    assert not unused, f"public names no test uses: {unused}"


# Names the area test files do not reach, exercised here.

def test_text_whitespace_helpers():
    text = importlib.import_module("convirt.text")
    assert text.clean_whitespace("  No \n\t effusion.  ") == "No effusion."
    assert text.count_tokens("Heart size  is normal.") == 4


def test_write_jpeg_roundtrip(tmp_path):
    import torch
    image = importlib.import_module("convirt.image")
    x = torch.linspace(0, 1, 32 * 24).view(1, 32, 24)
    image.write_jpeg(tmp_path / "a.jpg", x, quality=95)
    y = image.read_image(tmp_path / "a.jpg", channels=1)
    assert y.shape == (1, 32, 24) and (y - x).abs().mean() < 0.02


def test_transform_base_and_eval_preprocess():
    import torch
    T = importlib.import_module("convirt.transforms")
    image = importlib.import_module("convirt.image")
    assert isinstance(T.paper_augmentation(size=32), T.Transform)
    x = torch.rand(1, 40, 30)
    assert torch.equal(T.EvalPreprocess(size=32)(x), image.eval_preprocess(x, 32))


def test_models_presets_and_torchvision_export(tmp_path):
    import torch
    cm = importlib.import_module("convirt.models")
    assert {"small", "paper"} <= set(cm.preset_names())
    cfg = cm.preset_config("small")
    assert cfg["image_size"] == 64
    model = cm.make(cfg)
    assert isinstance(model, cm.ConVIRTModel)
    # The small preset's base width has no torchvision model: refused, nothing written.
    with pytest.raises(ValueError, match="base_width 64.*got base_width 32"):
        cm.export_torchvision(model, tmp_path / "small.pth")
    assert not (tmp_path / "small.pth").exists()
    with pytest.raises(ValueError, match="got base_width 32"):
        cm.torchvision_state_dict(model)
    cfg["image_encoder"] = "resnet18"
    cfg["resnet"]["base_width"] = 64
    model = cm.make(cfg)
    sd = cm.torchvision_state_dict(model)
    assert "conv1.weight" in sd and not any(k.startswith("fc.") for k in sd)
    cm.export_torchvision(model, tmp_path / "resnet.pth")
    saved = torch.load(tmp_path / "resnet.pth")
    assert saved.keys() == sd.keys() and all(torch.equal(saved[k], sd[k]) for k in sd)


def test_dist_single_process_equals_the_local_loss():
    import torch
    dist = importlib.import_module("convirt.dist")
    ctx = dist.DistributedContext()
    v = torch.randn(5, 8, requires_grad=True)
    u = torch.randn(5, 8)
    g = dist.gather_with_grad(v, ctx)
    assert torch.equal(g, v)
    g.sum().backward()
    assert torch.equal(v.grad, torch.ones_like(v))
    crit = convirt.InfoNCELoss(temperature=0.1, group=ctx)
    assert torch.allclose(crit(v, u), convirt.infonce_loss(v, u, temperature=0.1), atol=1e-6)


def test_thread_defaults():
    assert convirt.default_num_threads() >= 1
