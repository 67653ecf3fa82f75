# One image for every process of the relay: web, worker, beat, flower, and the
# demo profile's fake Intercom and sample producer (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them: copy only
# the project metadata, install, then copy the code and install it alone.
COPY pyproject.toml README.md* constraints.txt ./
RUN mkdir -p cli worker producers fake_intercom demo console \
    && touch cli/__init__.py worker/__init__.py producers/__init__.py fake_intercom/__init__.py demo/__init__.py console/__init__.py \
    && pip install -c constraints.txt ".[monitor]" \
    && pip uninstall -y intercom-relay

COPY cli ./cli
COPY worker ./worker
COPY producers ./producers
COPY fake_intercom ./fake_intercom
COPY demo ./demo
COPY console ./console
RUN pip install --no-deps .

# Never run as root: the relay needs no privilege, and a compromised process
# should not own the container.  Beat's schedule file goes to /tmp.
RUN useradd --create-home --uid 10001 relay
USER relay

ENV BEAT_SCHEDULE_FILE=/tmp/celerybeat-schedule
EXPOSE 8000 5555
CMD ["intercom-relay", "serve", "--host", "0.0.0.0", "--port", "8000"]
