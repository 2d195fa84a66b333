"""Apache Kafka 4.x in KRaft mode, jars fetched from Maven Central by mvn: one node, or a
cluster of N nodes (each broker + controller) on consecutive ports."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from auth_kappa.config import Config
from auth_kappa.errors import UserError
from auth_kappa.stack import probes, process
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


CONTROLLER_OFFSET = 100   # in a cluster, node i's controller listens on its port + 100
SASL_OFFSET = 200         # every node's SASL_PLAINTEXT listener: its port + 200
SASL_USER = "auth"


def sasl_password(config: Config) -> str:
    """The stack's SASL/PLAIN password for user `auth`: made once, kept mode 0600."""
    path = Path(config.stack_dir).resolve() / "kafka" / "sasl.password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


@dataclass
class KafkaBroker(Service):
    """Node `node` of `nodes`; a single node keeps the layout it always had (home
    .stack/kafka, controller on port + 1)."""

    name: str = "kafka"
    start_timeout: float = 90.0
    node: int = 1
    nodes: int = 1

    def __post_init__(self) -> None:
        if self.nodes > 1:
            self.name = f"kafka-{self.node}"

    @property
    def home(self) -> Path:
        root = Path(self.config.stack_dir).resolve() / "kafka"
        return root if self.nodes == 1 else root / f"node-{self.node}"

    @property
    def port(self) -> int:
        return self.config.kafka_host_port[1] + self.node - 1

    @property
    def controller_port(self) -> int:
        return self.controller_of(self.node)

    def controller_of(self, node: int) -> int:
        base = self.config.kafka_host_port[1]
        return base + 1 if self.nodes == 1 else base + node - 1 + CONTROLLER_OFFSET

    @property
    def sasl_port(self) -> int:
        return self.port + SASL_OFFSET

    @property
    def replication(self) -> int:
        """Internal topics' replication: every node up to 3."""
        return min(3, self.nodes)

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
            f"node.id={self.node}",
            "controller.quorum.voters=" + ",".join(
                f"{i}@127.0.0.1:{self.controller_of(i)}" for i in range(1, self.nodes + 1)),
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port},"
            f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port},"
            f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
            "SASL_PLAINTEXT:SASL_PLAINTEXT",
            # a secured listener next to the open one, so clients' SASL settings
            # (AUTH_KAFKA_SECURITY_PROTOCOL ...) can be tried against a real broker
            "sasl.enabled.mechanisms=PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config="
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_{SASL_USER}="{sasl_password(self.config)}";',

            f"offsets.topic.replication.factor={self.replication}",
            "offsets.topic.num.partitions=8",
            f"transaction.state.log.replication.factor={self.replication}",
            f"transaction.state.log.min.isr={min(2, self.replication)}",
            f"default.replication.factor={self.replication}",
            f"min.insync.replicas={min(2, self.replication)}",
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
            self._storage_tool("format", "-t", self.cluster_id(), "-c", str(props))

    def cluster_id(self) -> str:
        """One id for every node of a cluster, made by the first node to format."""
        if self.nodes == 1:
            return self._storage_tool("random-uuid").strip() or uuid.uuid4().hex
        saved = self.home.parent / "cluster.id"
        if not saved.exists():
            saved.write_text(self._storage_tool("random-uuid").strip() + "\n")
        return saved.read_text().strip()

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

        made = ensure_topics(self.address, self.config.topics, self.config.partitions,
                             replication=self.config.replication)
        return [f"topics {', '.join(self.config.topics)} "
                f"({self.config.partitions} partitions; created: {', '.join(made) or 'none'})"]


@dataclass
class KafkaCluster(Service):
    """N KRaft nodes started together (a quorum needs a majority before any node answers)
    and stopped together; each keeps its own pid, data dir and log."""

    name: str = "kafka"
    start_timeout: float = 120.0
    nodes: int = 3

    def __post_init__(self) -> None:
        self.members = [KafkaBroker(self.config, node=i, nodes=self.nodes)
                        for i in range(1, self.nodes + 1)]

    @property
    def address(self) -> str:
        return ",".join(m.address for m in self.members)

    @property
    def logfile(self) -> Path:
        return self.members[0].logfile

    def answering(self) -> bool:
        return all(m.answering() for m in self.members)

    def own_pid(self) -> int | None:
        return self.members[0].own_pid()

    def start(self) -> int:
        single = KafkaBroker(self.config)
        if single.own_pid():
            raise UserError(f"this stack's single Kafka node runs (pid {single.own_pid()}); "
                            "run `auth-kappa stack down kafka` first")
        save_nodes(self.config, self.nodes)
        pids = [m.launch() for m in self.members if not m.answering()]
        process.wait_until(self.answering, what=f"kafka at {self.address}",
                           timeout=self.start_timeout, pid=pids[0] if pids else None,
                           logfile=self.logfile)
        return self.own_pid() or 0

    def stop(self) -> bool:
        stopped = [m.stop() for m in self.members]
        return any(stopped)

    def after_start(self) -> list[str]:
        lines = self.members[-1].after_start()
        return [*lines, f"{self.nodes} brokers: set AUTH_KAFKA={self.address}"]


def nodes_file(config: Config) -> Path:
    return Path(config.stack_dir).resolve() / "kafka" / "nodes"


def save_nodes(config: Config, nodes: int) -> None:
    path = nodes_file(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{nodes}\n")


def stack_nodes(config: Config) -> int:
    """How many Kafka nodes this stack runs: the flag, else what `stack up` last started."""
    if config.kafka_brokers:
        return config.kafka_brokers
    try:
        return int(nodes_file(config).read_text())
    except (OSError, ValueError):
        return 1


def kafka_service(config: Config) -> Service:
    nodes = stack_nodes(config)
    return KafkaBroker(config) if nodes == 1 else KafkaCluster(config, nodes=nodes)
