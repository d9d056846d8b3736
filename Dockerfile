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
USER hashbank
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]
