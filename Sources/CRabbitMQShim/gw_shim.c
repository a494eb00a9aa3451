#include "gw_shim.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

static amqp_table_entry_t gw_bool_entry(const char *key, amqp_boolean_t value) {
  amqp_table_entry_t entry;
  entry.key = amqp_cstring_bytes(key);
  entry.value.kind = AMQP_FIELD_KIND_BOOLEAN;
  entry.value.value.boolean = value;
  return entry;
}

static amqp_table_entry_t gw_string_entry(const char *key, const char *value) {
  amqp_table_entry_t entry;
  entry.key = amqp_cstring_bytes(key);
  entry.value.kind = AMQP_FIELD_KIND_UTF8;
  entry.value.value.bytes = amqp_cstring_bytes(value);
  return entry;
}

amqp_rpc_reply_t gw_amqp_login(amqp_connection_state_t state, const char *vhost,
                               int channel_max, int frame_max, int heartbeat,
                               const char *user, const char *password,
                               const char *connection_name) {
  amqp_table_entry_t capabilities[5] = {
      gw_bool_entry("consumer_cancel_notify", 1),
      gw_bool_entry("connection.blocked", 1),
      gw_bool_entry("publisher_confirms", 1),
      gw_bool_entry("basic.nack", 1),
      gw_bool_entry("authentication_failure_close", 1),
  };
  amqp_table_entry_t properties[4];
  int count = 0;
  properties[count].key = amqp_cstring_bytes("capabilities");
  properties[count].value.kind = AMQP_FIELD_KIND_TABLE;
  properties[count].value.value.table.num_entries = 5;
  properties[count].value.value.table.entries = capabilities;
  count++;
  properties[count++] = gw_string_entry("product", "genworker");
  properties[count++] = gw_string_entry("platform", "Swift over rabbitmq-c");
  if (connection_name != NULL && connection_name[0] != '\0') {
    properties[count++] = gw_string_entry("connection_name", connection_name);
  }
  amqp_table_t table;
  table.num_entries = count;
  table.entries = properties;
  return amqp_login_with_properties(state, vhost, channel_max, frame_max,
                                    heartbeat, &table, AMQP_SASL_METHOD_PLAIN,
                                    user, password);
}

int gw_socket_set_send_timeout(int fd, long milliseconds) {
  struct timeval tv;
  tv.tv_sec = milliseconds / 1000;
  tv.tv_usec = (milliseconds % 1000) * 1000;
  return setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}
