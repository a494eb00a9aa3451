import CRabbitMQ

#if canImport(Glibc)
    import Glibc
#endif

/// C memory that lives for one call into rabbitmq-c and is freed with the arena.
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit { for pointer in allocations { free(pointer) } }

    func bytes(_ string: String) -> amqp_bytes_t { bytes(Array(string.utf8)) }

    func bytes(_ array: [UInt8]) -> amqp_bytes_t {
        guard !array.isEmpty, let pointer = malloc(array.count) else { return amqp_bytes_t(len: 0, bytes: nil) }
        array.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: array.count) }
        allocations.append(pointer)
        return amqp_bytes_t(len: array.count, bytes: pointer)
    }

    func table(_ table: AMQPTable?) -> amqp_table_t {
        guard let table, !table.isEmpty else { return amqp_table_t(num_entries: 0, entries: nil) }
        let entries = allocate(amqp_table_entry_t.self, count: table.count)
        for (index, (key, value)) in table.sorted(by: { $0.key < $1.key }).enumerated() {
            entries[index] = amqp_table_entry_t(key: bytes(key), value: field(value))
        }
        return amqp_table_t(num_entries: Int32(table.count), entries: entries)
    }

    func field(_ value: AMQPFieldValue) -> amqp_field_value_t {
        var field = amqp_field_value_t()
        func kind(_ k: amqp_field_value_kind_t) -> UInt8 { UInt8(k.rawValue) }
        switch value {
        case .bool(let b):
            field.kind = kind(AMQP_FIELD_KIND_BOOLEAN)
            field.value.boolean = b ? 1 : 0
        case .int32(let v):
            field.kind = kind(AMQP_FIELD_KIND_I32)
            field.value.i32 = v
        case .int64(let v):
            field.kind = kind(AMQP_FIELD_KIND_I64)
            field.value.i64 = v
        case .double(let v):
            field.kind = kind(AMQP_FIELD_KIND_F64)
            field.value.f64 = v
        case .string(let s):
            field.kind = kind(AMQP_FIELD_KIND_UTF8)
            field.value.bytes = bytes(s)
        case .bytes(let b):
            field.kind = kind(AMQP_FIELD_KIND_BYTES)
            field.value.bytes = bytes(b)
        case .timestamp(let t):
            field.kind = kind(AMQP_FIELD_KIND_TIMESTAMP)
            field.value.u64 = t
        case .table(let t):
            field.kind = kind(AMQP_FIELD_KIND_TABLE)
            field.value.table = table(t)
        case .void: field.kind = kind(AMQP_FIELD_KIND_VOID)
        case .array(let items):
            field.kind = kind(AMQP_FIELD_KIND_ARRAY)
            let entries = allocate(amqp_field_value_t.self, count: max(items.count, 1))
            for (index, item) in items.enumerated() { entries[index] = self.field(item) }
            field.value.array = amqp_array_t(num_entries: Int32(items.count), entries: entries)
        }
        return field
    }

    func properties(_ p: AMQPProperties) -> amqp_basic_properties_t {
        var c = amqp_basic_properties_t()
        var flags: UInt32 = 0
        func set(_ value: String?, _ flag: Int32, _ apply: (amqp_bytes_t) -> Void) {
            guard let value else { return }
            apply(bytes(value))
            flags |= UInt32(flag)
        }
        set(p.contentType, AMQP_BASIC_CONTENT_TYPE_FLAG) { c.content_type = $0 }
        set(p.contentEncoding, AMQP_BASIC_CONTENT_ENCODING_FLAG) { c.content_encoding = $0 }
        set(p.correlationID, AMQP_BASIC_CORRELATION_ID_FLAG) { c.correlation_id = $0 }
        set(p.replyTo, AMQP_BASIC_REPLY_TO_FLAG) { c.reply_to = $0 }
        set(p.expiration, AMQP_BASIC_EXPIRATION_FLAG) { c.expiration = $0 }
        set(p.messageID, AMQP_BASIC_MESSAGE_ID_FLAG) { c.message_id = $0 }
        set(p.type, AMQP_BASIC_TYPE_FLAG) { c.type = $0 }
        set(p.userID, AMQP_BASIC_USER_ID_FLAG) { c.user_id = $0 }
        set(p.appID, AMQP_BASIC_APP_ID_FLAG) { c.app_id = $0 }
        if let headers = p.headers {
            c.headers = table(headers)
            flags |= UInt32(AMQP_BASIC_HEADERS_FLAG)
        }
        if let mode = p.deliveryMode {
            c.delivery_mode = mode
            flags |= UInt32(AMQP_BASIC_DELIVERY_MODE_FLAG)
        }
        if let priority = p.priority {
            c.priority = priority
            flags |= UInt32(AMQP_BASIC_PRIORITY_FLAG)
        }
        if let timestamp = p.timestamp {
            c.timestamp = timestamp
            flags |= UInt32(AMQP_BASIC_TIMESTAMP_FLAG)
        }
        c._flags = flags
        return c
    }

    private func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let raw = calloc(count, MemoryLayout<T>.stride)!
        allocations.append(raw)
        return raw.bindMemory(to: T.self, capacity: count)
    }
}

extension amqp_bytes_t {
    var array: [UInt8] {
        guard len > 0, let bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: len))
    }

    var string: String { String(decoding: array, as: UTF8.self) }
}

extension amqp_table_t {
    var swiftTable: AMQPTable {
        var result = AMQPTable()
        guard num_entries > 0, let entries else { return result }
        for index in 0..<Int(num_entries) {
            result[entries[index].key.string] = entries[index].value.swiftValue
        }
        return result
    }
}

extension amqp_field_value_t {
    var swiftValue: AMQPFieldValue {
        switch amqp_field_value_kind_t(UInt32(kind)) {
        case AMQP_FIELD_KIND_BOOLEAN: return .bool(value.boolean != 0)
        case AMQP_FIELD_KIND_I8: return .int32(Int32(value.i8))
        case AMQP_FIELD_KIND_U8: return .int32(Int32(value.u8))
        case AMQP_FIELD_KIND_I16: return .int32(Int32(value.i16))
        case AMQP_FIELD_KIND_U16: return .int32(Int32(value.u16))
        case AMQP_FIELD_KIND_I32: return .int32(value.i32)
        case AMQP_FIELD_KIND_U32: return .int64(Int64(value.u32))
        case AMQP_FIELD_KIND_I64: return .int64(value.i64)
        case AMQP_FIELD_KIND_U64: return .int64(Int64(truncatingIfNeeded: value.u64))
        case AMQP_FIELD_KIND_F32: return .double(Double(value.f32))
        case AMQP_FIELD_KIND_F64: return .double(value.f64)
        case AMQP_FIELD_KIND_DECIMAL:
            var scaled = Double(value.decimal.value)
            for _ in 0..<value.decimal.decimals { scaled /= 10 }
            return .double(scaled)
        case AMQP_FIELD_KIND_UTF8: return .string(value.bytes.string)
        case AMQP_FIELD_KIND_BYTES: return .bytes(value.bytes.array)
        case AMQP_FIELD_KIND_TIMESTAMP: return .timestamp(value.u64)
        case AMQP_FIELD_KIND_TABLE: return .table(value.table.swiftTable)
        case AMQP_FIELD_KIND_ARRAY:
            var items: [AMQPFieldValue] = []
            if value.array.num_entries > 0, let entries = value.array.entries {
                for index in 0..<Int(value.array.num_entries) { items.append(entries[index].swiftValue) }
            }
            return .array(items)
        default: return .void
        }
    }
}

extension amqp_basic_properties_t {
    var swiftProperties: AMQPProperties {
        func has(_ flag: Int32) -> Bool { _flags & UInt32(flag) != 0 }
        var p = AMQPProperties()
        if has(AMQP_BASIC_CONTENT_TYPE_FLAG) { p.contentType = content_type.string }
        if has(AMQP_BASIC_CONTENT_ENCODING_FLAG) { p.contentEncoding = content_encoding.string }
        if has(AMQP_BASIC_HEADERS_FLAG) { p.headers = headers.swiftTable }
        if has(AMQP_BASIC_DELIVERY_MODE_FLAG) { p.deliveryMode = delivery_mode }
        if has(AMQP_BASIC_PRIORITY_FLAG) { p.priority = priority }
        if has(AMQP_BASIC_CORRELATION_ID_FLAG) { p.correlationID = correlation_id.string }
        if has(AMQP_BASIC_REPLY_TO_FLAG) { p.replyTo = reply_to.string }
        if has(AMQP_BASIC_EXPIRATION_FLAG) { p.expiration = expiration.string }
        if has(AMQP_BASIC_MESSAGE_ID_FLAG) { p.messageID = message_id.string }
        if has(AMQP_BASIC_TIMESTAMP_FLAG) { p.timestamp = timestamp }
        if has(AMQP_BASIC_TYPE_FLAG) { p.type = type.string }
        if has(AMQP_BASIC_USER_ID_FLAG) { p.userID = user_id.string }
        if has(AMQP_BASIC_APP_ID_FLAG) { p.appID = app_id.string }
        return p
    }
}

/// AMQP 0-9-1 method ids (class << 16 | method); rabbitmq-c's macros carry casts Swift does not import.
enum AMQPMethod {
    static let connectionClose: UInt32 = 0x000A_0032
    static let connectionCloseOK: UInt32 = 0x000A_0033
    static let connectionBlocked: UInt32 = 0x000A_003C
    static let connectionUnblocked: UInt32 = 0x000A_003D
    static let channelClose: UInt32 = 0x0014_0028
    static let channelCloseOK: UInt32 = 0x0014_0029
    static let basicCancel: UInt32 = 0x003C_001E
    static let basicReturn: UInt32 = 0x003C_0032
    static let basicDeliver: UInt32 = 0x003C_003C
    static let basicAck: UInt32 = 0x003C_0050
    static let basicNack: UInt32 = 0x003C_0078
}
