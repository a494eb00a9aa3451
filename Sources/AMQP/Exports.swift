// The values of the AMQP layer come with it: `import AMQP` is enough to use a connection.
@_exported import AMQPTypes
