# The node image: ptzjepa on a CUDA PyTorch base, everything it keeps under /persistence.
#
#   docker build -t ptzjepa .
#   docker build --build-arg BASE_IMAGE=<a PyTorch image for your Jetson> -t ptzjepa .
#
# BASE_IMAGE: any image with Python >= 3.11 and pip, and with a CUDA build of torch to use a GPU.
# The default, NVIDIA's NGC PyTorch release (Python 3.12, CUDA 12), is published for linux/amd64
# and linux/arm64 (server GPUs). A Jetson needs an image built for its JetPack: NGC's `-igpu` tag
# of a release, or an L4T PyTorch image, as long as its Python is >= 3.11. A base without torch
# (e.g. python:3.12-slim, for a CPU-only build) works too: torch then comes from PyPI.
ARG BASE_IMAGE=nvcr.io/nvidia/pytorch:24.12-py3
FROM ${BASE_IMAGE}

# The user the node runs as; the host folder mounted at /persistence must be writable by it
# (or run with --user). Not 1000: Ubuntu 24.04 bases already have a user with that id.
ARG NODE_UID=10001

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/ptzjepa \
    PATH=/opt/ptzjepa/bin:$PATH

# A virtual environment that sees the base's packages: ours go into it (no clash with the
# distribution's Python, PEP 668), while torch and CUDA stay the base's. --without-pip: some
# bases lack ensurepip; the base's own pip, run by the venv's python, installs into the venv.
RUN python3 -m venv --system-site-packages --without-pip /opt/ptzjepa

WORKDIR /app

# Dependencies first, so that a change to the code does not reinstall them. torch is left out
# when the base has it (docker/node_requirements.py): pyproject.toml pins the PyPI torch exactly,
# and installing that here would replace the base's build, made for this CUDA or JetPack, with a
# multi-GB wheel that may not see the GPU or not load at all on a Jetson.
COPY pyproject.toml ./
COPY docker/node_requirements.py docker/
RUN python docker/node_requirements.py remote,waggle > /tmp/requirements.txt \
 && python -m pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The project itself, editable: profiles/ and machines/ are read from next to the package, so it
# must run from /app, not from a copy in site-packages. --no-deps: all of them are in already.
COPY . .
RUN python -m pip install --no-deps -e . \
 && useradd --uid "${NODE_UID}" --create-home --shell /usr/sbin/nologin ptzjepa \
 && mkdir -p /persistence \
 && chown ptzjepa /persistence

VOLUME ["/persistence"]
USER ptzjepa

# `docker run IMAGE` runs the lifelong loop with the waggle profile (storage at /persistence,
# a Hanwha camera); arguments after the image replace the CMD, e.g.
# `run --profile waggle --set camera.url=http://10.31.81.12`, or `legacy -rm lifelong ...`.
ENTRYPOINT ["python", "cli.py"]
CMD ["run", "--profile", "waggle"]
