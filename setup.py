import re
from pathlib import Path

from setuptools import find_packages, setup

# The version is written once, in the package (byol_pytorch.__version__).
VERSION = re.search(r'^__version__ = "([^"]+)"', Path(__file__).with_name("byol_pytorch").joinpath("__init__.py")
                    .read_text(encoding="utf-8"), re.M).group(1)  # type: ignore[union-attr]
# Where this release's files are published: the long description's relative links point into it, at this
# version's tag, so that the PyPI page shows the diagram and the report (PyPI cannot follow relative links).
REPOSITORY = "https://github.com/byol-pytorch/byol-pytorch"


def long_description() -> str:
    """The README with its relative image and file links made absolute (images from the raw files)."""
    text = Path(__file__).with_name("README.md").read_text(encoding="utf-8")
    raw, blob = f"{REPOSITORY}/raw/v{VERSION}/", f"{REPOSITORY}/blob/v{VERSION}/"

    def absolute(match: re.Match[str]) -> str:
        image, label, target = match.group(1), match.group(2), match.group(3)
        if re.match(r"[a-z]+:|#", target):
            return match.group(0)
        return f"{image}[{label}]({(raw if image else blob) + target})"

    return re.sub(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)", absolute, text)


# What byol-pytorch works with beyond torchvision; the tests install and exercise each.
ECOSYSTEM = {
    "timm": ["timm>=0.9"],
    "transformers": ["transformers>=4.40"],
    "tensorboard": ["tensorboard>=2.10"],
    "parquet": ["pyarrow>=12"],
    # WebDataset tar shards (--data 'shards/train-{000000..000127}.tar', TrainingStream).
    "webdataset": ["webdataset>=1.0"],
    # Hugging Face datasets: save_to_disk folders, Parquet with an image column, datasets.IterableDataset
    # streams; 2.18 is the first with IterableDataset.state_dict, which a resumed stream restarts from.
    "datasets": ["datasets>=2.18", "pyarrow>=12"],
}
EXTRAS = {
    **ECOSYSTEM,
    "all": sorted({req for reqs in ECOSYSTEM.values() for req in reqs}),
    # scikit-image: its bundled photographs make the JPEG folders of the tests and benchmarks/bench_data.py.
    "test": ["pytest>=7", "pytest-xdist>=3", "scikit-image>=0.19", *sorted({req for reqs in ECOSYSTEM.values() for req in reqs})],
}

setup(
    name="byol-pytorch",
    version=VERSION,
    description="Bootstrap Your Own Latent (BYOL): self-supervised pretraining of any PyTorch image network",
    long_description=long_description(),
    long_description_content_type="text/markdown",
    license="MIT",
    url=REPOSITORY,
    project_urls={"Changelog": f"{REPOSITORY}/blob/v{VERSION}/CHANGELOG.md",
                  "Documentation": f"{REPOSITORY}/tree/v{VERSION}/docs"},
    packages=find_packages(include=["byol_pytorch", "byol_pytorch.*"]),
    package_data={"byol_pytorch": ["py.typed"]},
    python_requires=">=3.10",
    # The oldest versions that work, as .ci/minimum-versions.txt pins them (and says what sets each);
    # .ci/run tests them.
    install_requires=[
        "torch>=2.6",
        "torchvision>=0.21",
        "kornia>=0.7.4",
        "accelerate>=1.1",
        # net.safetensors next to net.pt (accelerate needs it too).
        "safetensors>=0.4",
        # The built-in demo dataset (real handwritten digits shipped inside the package).
        "scikit-learn>=1.2",
        "matplotlib>=3.6",
        "tqdm>=4.60",
    ],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["byol-pytorch=byol_pytorch.cli:main"]},
    classifiers=[
        "Development Status :: 5 - Production/Stable",
        "Intended Audience :: Science/Research",
        "Intended Audience :: Developers",
        "License :: OSI Approved :: MIT License",
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Typing :: Typed",
    ],
)
