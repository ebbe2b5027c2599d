"""The RabbitMQ user of a remote worker host, set up as docs/workers.md says (one pattern, its queue's name, for
configure, write and read), may consume and publish its own container queue and nothing else: not the scoring or
baselines queues, not the default exchange (through which a message would reach any queue)."""

from __future__ import annotations

import pytest
from amqp.exceptions import AccessRefused
from kombu import Connection, Exchange, Queue


def own_queue(name: str) -> Queue:
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def test_a_worker_user_reaches_its_own_queue_only(rabbitmq_vhost):
    url = rabbitmq_vhost.add_queue_user(["containers-gpu"])
    with Connection(url, connect_timeout=10) as connection:
        channel = connection.channel()
        own_queue("containers-gpu")(channel).declare()
        connection.Producer(channel).publish({"n": 1}, exchange="containers-gpu", routing_key="containers-gpu")
        message = own_queue("containers-gpu")(channel).get(no_ack=True)
        assert message is not None and message.payload == {"n": 1}
    for name in ("scoring", "baselines", "containers-cpu"):
        with Connection(url, connect_timeout=10) as connection, pytest.raises(AccessRefused, match=name):
            own_queue(name)(connection.channel()).declare()
    with Connection(rabbitmq_vhost.admin_url(), connect_timeout=10) as admin:
        own_queue("scoring")(admin.channel()).declare()  # the site's queue exists
    with Connection(url, connect_timeout=10) as connection, pytest.raises(AccessRefused):
        channel = connection.channel()
        queue = Queue("scoring", Exchange("scoring", type="direct"), routing_key="scoring", no_declare=True)
        queue(channel).get(no_ack=True)  # reading the scoring queue
    with Connection(url, connect_timeout=10) as connection, pytest.raises(AccessRefused, match="amq.default"):
        channel = connection.channel()
        connection.Producer(channel).publish({"n": 2}, exchange="", routing_key="scoring")
        channel.basic_qos(0, 1, False)  # the refusal of an unconfirmed publish arrives with the next call
        own_queue("containers-gpu")(channel).declare()
