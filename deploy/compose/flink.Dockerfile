# The Flink image of the detection job: the official Flink 2.2 image (Java 17) plus Python 3.11,
# socflow (the same code the local runtime runs) and the Kafka connector on the classpath.
# Build from the repository root: docker build -f deploy/compose/flink.Dockerfile -t socflow-flink:dev .
FROM flink:2.2.1-java17
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip python3-venv \
        python3-dev gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /opt/socflow
COPY pyproject.toml README.md ./
COPY ingest ingest
COPY detectors detectors
COPY alerts alerts
COPY deploy deploy
COPY config config
COPY rules rules
# apache-flink (PyFlink 2.2.1) comes with socflow's dependencies; its Python side must match the
# cluster's Flink version.
# flink-python goes to usrlib: the application-mode entry point (PythonDriver) is found there.
# The job runs the sources under /opt/socflow (python.pythonpath): the Sigma engine's hot modules
# are compiled there with mypyc (detectors/sigma/native_build.py), about 1.8x as fast as the plain modules.
RUN pip install --no-cache-dir . mypy==2.4.1 \
    && python -m detectors.sigma.native_build && rm -rf /root/.cache/socflow \
    && mkdir -p /opt/flink/usrlib \
    && cp /opt/flink/opt/flink-python-*.jar /opt/flink/usrlib/
# flink-sql-connector-kafka 5.0.0-2.2 (Maven Central), fetched at build time by the build script
# deploy/compose/README.md shows; the official image has no Kafka connector.
COPY deploy/compose/lib/ /opt/flink/lib/
USER flink
