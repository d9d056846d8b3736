FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY config config
COPY hashbank hashbank
COPY cases cases
COPY exchange exchange
COPY reviewers reviewers
COPY scripts scripts
COPY locale locale
COPY manage.py ./
RUN pip install --no-cache-dir . && useradd --system --home /app hashbank \
    && mkdir -p /app/var && chown hashbank /app/var
# Static files are collected into the image (hashed names and .gz/.br copies) and
# served by whitenoise. Collecting needs no production secrets: the throw-away
# development ones it generates are removed in the same step.
ENV STATIC_ROOT=/app/static
RUN DEBUG=1 STATIC_HASHED_NAMES=1 HASHBANK_VAR_DIR=/tmp/collectstatic \
    python manage.py collectstatic --noinput && rm -rf /tmp/collectstatic
USER hashbank
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]
