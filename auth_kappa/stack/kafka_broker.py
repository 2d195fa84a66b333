"""Apache Kafka 4.x, one KRaft node (broker + controller), jars fetched from Maven Central by mvn."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from auth_kappa.errors import UserError
from auth_kappa.stack import probes
from auth_kappa.stack.service import Service

POM = "kafka-pom.xml"
JAVA_HINT = "apt-get install -y openjdk-17-jre-headless"
MVN_HINT = "apt-get install -y maven"


def kafka_version() -> str:
    text = resources.files("auth_kappa.stack.resources").joinpath(POM).read_text()
    return re.search(r"<kafka.version>([^<]+)</kafka.version>", text).group(1)


def java_major() -> int:
    java = shutil.which("java")
    if not java:
        raise UserError(f"Java 17+ is needed for Kafka and was not found; run: {JAVA_HINT}")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(m.group(1)) if m else 0
    return int(m.group(2)) if major == 1 and m else major


@dataclass
class KafkaBroker(Service):
    name: str = "kafka"
    start_timeout: float = 90.0

    @property
    def port(self) -> int:
        return self.config.kafka_host_port[1]

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def libs(self) -> Path:
        return Path(self.config.cache_dir).resolve() / f"kafka-{kafka_version()}" / "libs"

    def answering(self) -> bool:
        return probes.kafka_ready(self.address)

    def fetch_jars(self) -> None:
        """mvn dependency:copy-dependencies into the cache; a no-op once the cache is full."""
        marker = self.libs / ".complete"
        if marker.exists():
            return
        mvn = shutil.which("mvn")
        if not mvn:
            raise UserError(f"Maven (mvn) is needed to fetch Kafka's jars; run: {MVN_HINT}")
        self.libs.mkdir(parents=True, exist_ok=True)
        print(f"stack: fetching Kafka {kafka_version()} jars with mvn into {self.libs}",
              flush=True)
        with resources.as_file(resources.files("auth_kappa.stack.resources") / POM) as pom:
            run = subprocess.run(
                [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
                 "-DincludeScope=runtime", f"-DoutputDirectory={self.libs}"],
                capture_output=True, text=True)
        if run.returncode != 0:
            last = (run.stdout + run.stderr).strip().splitlines()[-1:] or ["(no output)"]
            raise UserError(f"mvn could not fetch Kafka's jars: {last[0][:200]}")
        marker.write_text("ok\n")

    def properties(self) -> str:
        data = self.home / "data"
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=8",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            f"num.partitions={self.config.partitions}",
            "auto.create.topics.enable=true",
            "log.retention.hours=168",
            "message.max.bytes=8388608",
            f"log.dirs={data}",
            "",
        ])

    def prepare(self) -> None:
        if java_major() < 17:
            raise UserError(f"Kafka 4 needs Java 17 or newer; run: {JAVA_HINT}")
        self.fetch_jars()
        props = self.home / "server.properties"
        props.write_text(self.properties())
        (self.home / "log4j2.properties").write_text(
            "rootLogger.level=WARN\nrootLogger.appenderRef.out.ref=out\n"
            "appender.out.type=Console\nappender.out.name=out\n"
            "appender.out.layout.type=PatternLayout\n"
            "appender.out.layout.pattern=[%d] %p %m (%c)%n\n")
        if not (self.home / "data" / "meta.properties").exists():
            cluster_id = self._storage_tool("random-uuid").strip() or uuid.uuid4().hex
            self._storage_tool("format", "-t", cluster_id, "-c", str(props))

    def _storage_tool(self, *args: str) -> str:
        run = subprocess.run(["java", "-cp", f"{self.libs}/*", "kafka.tools.StorageTool", *args],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise UserError(f"Kafka storage tool failed: {(run.stderr or run.stdout).strip()[:200]}")
        return run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""

    def command(self) -> list[str]:
        return ["java", "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
                "-cp", f"{self.libs}/*", "kafka.Kafka", str(self.home / "server.properties")]

    def after_start(self) -> list[str]:
        from auth_kappa.kafka_admin import ensure_topics

        made = ensure_topics(self.address, self.config.topics, self.config.partitions)
        return [f"topics {', '.join(self.config.topics)} "
                f"({self.config.partitions} partitions; created: {', '.join(made) or 'none'})"]
