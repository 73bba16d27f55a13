-- W3C trace context (issue 12): the `traceparent` of the request that accepted the message, so
-- the relay's AMQP headers and the dispatcher's WAHA call continue the same trace however much
-- later the message is sent.
ALTER TABLE messages ADD COLUMN traceparent TEXT;
