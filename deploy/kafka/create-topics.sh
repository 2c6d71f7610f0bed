#!/bin/sh
# One-shot job of docker-compose: create every topic (and its dead-letter topic) before the services
# start. Topic names are those of libs/contracts (contracts.topics.ALL_TOPICS); tests/deploy checks
# that this list matches.
set -eu
BOOTSTRAP=${BOOTSTRAP:-kafka:9092}
PARTITIONS=${TOPIC_PARTITIONS:-6}
REPLICATION=${TOPIC_REPLICATION_FACTOR:-1}
RETENTION_MS=${TOPIC_RETENTION_MS:-604800000}        # 7 days
DLQ_RETENTION_MS=${DLQ_RETENTION_MS:-2592000000}     # 30 days: time to read and replay
TOPICS="ecom.customers.v1 ecom.orders.v1 ecom.products.v1 ecom.prices.v1 ecom.inventory.v1 ecom.channels.v1 ecom.shipments.v1 ecom.inbound.v1 ecom.sales.v1 ecom.activity.v1 ecom.privacy.v1"
KT=/opt/kafka/bin/kafka-topics.sh

for topic in $TOPICS; do
    "$KT" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$topic" \
        --partitions "$PARTITIONS" --replication-factor "$REPLICATION" \
        --config "retention.ms=$RETENTION_MS" --config cleanup.policy=delete
    "$KT" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$topic.dlq" \
        --partitions 1 --replication-factor "$REPLICATION" \
        --config "retention.ms=$DLQ_RETENTION_MS"
done
"$KT" --bootstrap-server "$BOOTSTRAP" --list
