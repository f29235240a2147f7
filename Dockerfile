# syntax=docker/dockerfile:1
# One image for every t2m process: the API (`uvicorn --factory api.main:create_app`), the
# video/llm worker (`t2m worker --queues video,llm`), the render worker (`t2m worker --queues
# render`) and the one-shot set-up job (`python /opt/t2m/t2m_setup.py`). docker-compose.yml and deploy/
# run it with different commands (Kubernetes: `args`, so that tini stays PID 1) and users.
# PYTHON_IMAGE: any Debian 12 image with Python 3.11 as `python` and its headers, as the official
# image has (deploy/smoke.sh builds one locally with debootstrap).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: compile pycairo/manimpango against cairo and pango, install t2m into /opt/venv ------
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential libpango1.0-dev libcairo2-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# Dependencies first, in a layer of their own: a source change does not reinstall them. Only the
# runtime ones (not the `local` and `dev` extras), at the versions requirements.lock pins.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > runtime.txt \
    && /opt/venv/bin/pip install -c requirements.lock -r runtime.txt
COPY README.md worker.py ./
COPY t2m t2m
COPY workflows workflows
COPY activities activities
COPY api api
COPY cli cli
# The docs index's vectors (t2m/authoring/doc_vectors.py), built once into the venv.
RUN /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/python -m t2m.authoring.docs

# --- runtime: no compiler, no -dev packages; what Manim, TeX, narration and the render jail use ---
FROM ${PYTHON_IMAGE}
# libcairo2, libpango*: the shared libraries pycairo and manimpango (built above) link against;
# texlive-* + dvisvgm: MathTex/Tex (latex-base alone lacks standalone.cls);
# espeak-ng, festival + festvox-us-slt-hts: narration (`festival:us_slt`); bubblewrap + util-linux (setpriv): the render jail (t2m/jail/bwrap.py);
# tini: PID 1 that forwards signals and reaps orphans.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libcairo2 libpango-1.0-0 libpangocairo-1.0-0 libpangoft2-1.0-0 libstdc++6 \
        texlive-latex-base texlive-latex-extra texlive-fonts-recommended dvisvgm \
        espeak-ng festival festvox-us-slt-hts bubblewrap util-linux tini \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
COPY deploy/t2m_setup.py /opt/t2m/t2m_setup.py
# The API and the video/llm worker run as this unprivileged user (the image's default).
# The render worker alone runs as root (docker-compose.yml: `user: "0:0"`; deploy/: runAsUser 0)
# with a few added capabilities: t2m/jail/bwrap.py starts bubblewrap as root so that every render runs
# as a uid of its own from a pool (2000000000+), which root must switch to (setpriv) and own the
# work dir as; see "The render worker" in deploy/README.md.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/t2m --create-home t2m
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    T2M_DATA_DIR=/var/lib/t2m \
    T2M_API_HOST=0.0.0.0 \
    T2M_DEV_USER=""
# Safe by default: the API listens on every address, so there is no anonymous dev identity
# (`t2m up`'s convenience); requests need an API key or a JWT (`t2m keys create`).
# Settings also read `.env` from the working directory: this one holds none.
WORKDIR /var/lib/t2m
USER t2m
EXPOSE 8000
ENTRYPOINT ["tini", "--"]
# No access log: share links and signed media URLs carry their tokens in the path and query.
CMD ["uvicorn", "--factory", "api.main:create_app", "--host", "0.0.0.0", "--port", "8000", "--no-access-log"]
