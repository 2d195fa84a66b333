"""`stack up | down | status`: bring the three services up in order, report, tear down ours."""

from __future__ import annotations

from dataclasses import dataclass

from auth_kappa.config import Config
from auth_kappa.stack.kafka_broker import kafka_service
from auth_kappa.stack.redis_cluster import redis_service
from auth_kappa.stack.seaweed import SeaweedS3
from auth_kappa.stack.service import Service

SERVICES = {"redis": redis_service, "s3": SeaweedS3, "kafka": kafka_service}


@dataclass
class Status:
    name: str
    address: str
    answering: bool
    pid: int | None  # set only when our stack started it

    @property
    def line(self) -> str:
        if self.answering and self.pid:
            state = f"running (pid {self.pid})"
        elif self.answering:
            state = "answering (not started by this stack; left alone)"
        elif self.pid:
            state = f"NOT ANSWERING (pid {self.pid} alive)"
        else:
            state = "stopped"
        return f"{self.name:6} {self.address:16} {state}"


def services(config: Config, only: list[str] | None = None) -> list[Service]:
    names = only or list(SERVICES)
    return [SERVICES[n](config) for n in names]


def status(config: Config, only: list[str] | None = None) -> list[Status]:
    return [Status(n, s.address, s.answering(), s.own_pid())
            for n, s in zip(only or list(SERVICES), services(config, only), strict=True)]


def up(config: Config, only: list[str] | None = None, log=print) -> None:
    """Idempotent: a service already answering is kept; one of ours that hangs is restarted."""
    for name, svc in zip(only or list(SERVICES), services(config, only), strict=True):
        if svc.answering():
            how = f"pid {svc.own_pid()}" if svc.own_pid() else "external"
            log(f"stack: {name} already answering at {svc.address} ({how})")
        else:
            if svc.own_pid():
                log(f"stack: {name} pid {svc.own_pid()} is not answering; restarting it")
                svc.stop()
            log(f"stack: starting {name} on {svc.address} (log: {svc.logfile})")
            pid = svc.start()
            log(f"stack: {name} up (pid {pid})")
        for line in svc.after_start():
            log(f"stack: {name}: {line}")


def down(config: Config, only: list[str] | None = None, log=print) -> None:
    for name, svc in reversed(list(zip(only or list(SERVICES), services(config, only),
                                       strict=True))):
        log(f"stack: {name} {'stopped' if svc.stop() else 'was not running (ours)'}")
