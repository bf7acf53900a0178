# The swiftchain image: the hub, the edge agent, the simulators and the CLI in one.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY ledger ledger
COPY runtime runtime
COPY transport transport
COPY pilots pilots
COPY gateway gateway
COPY edge edge
COPY simulators simulators
COPY mirror mirror
COPY swiftchain swiftchain
COPY witness witness
RUN pip install . && rm -rf /src

WORKDIR /work
EXPOSE 8080
ENTRYPOINT []
CMD ["swiftchain", "--help"]
