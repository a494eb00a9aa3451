/// Reads one section of the config for a section's `init(from:)`: every key is optional (a
/// missing one keeps the property's default), values are checked with the full key in the
/// message, and a key the section does not list in `Key` is refused.
package struct ConfigReader<Key: CodingKey & CaseIterable> {
    private let container: KeyedDecodingContainer<Key>
    private let path: [CodingKey]

    package init(_ decoder: Decoder, _: Key.Type) throws {
        path = decoder.codingPath
        let raw: KeyedDecodingContainer<AnyKey>
        do { raw = try decoder.container(keyedBy: AnyKey.self) } catch {
            throw GenWorkerError(.configuration, "\(Self.name(path)) must be a mapping of keys to values")
        }
        let known = Set(Key.allCases.map(\.stringValue))
        if let unknown = raw.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
            throw GenWorkerError(.configuration, "unknown config key '\(Self.name(path + [AnyKey(unknown)]))'")
        }
        container = try decoder.container(keyedBy: Key.self)
    }

    /// Whether the section sets `key` (to anything but null).
    package func has(_ key: Key) throws -> Bool { try container.contains(key) && !container.decodeNil(forKey: key) }

    /// Any decodable value (a section, a list, a string).
    package func read<T: Decodable>(_ value: inout T, _ key: Key) throws {
        do {
            guard try container.contains(key) && !container.decodeNil(forKey: key) else { return }
            value = try container.decode(T.self, forKey: key)
        } catch let error as GenWorkerError {
            throw error
        } catch {
            throw GenWorkerError(.configuration, "\(name(key)) must be \(Self.kind(of: T.self))")
        }
        if let text = value as? String, text.isEmpty { throw GenWorkerError(.configuration, "\(name(key)) must be a non-empty string") }
    }

    package func read(_ value: inout String?, _ key: Key) throws {
        var text = value ?? ""
        try read(&text, key)
        if !text.isEmpty { value = text }
    }

    package func read(_ value: inout Int, _ key: Key, _ range: ClosedRange<Int>) throws {
        var number = value
        do { try read(&number, key) } catch {
            throw GenWorkerError(.configuration, "\(name(key)) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        guard range.contains(number) else {
            throw GenWorkerError(.configuration, "\(name(key)) must be a whole number from \(range.lowerBound) to \(range.upperBound), not \(number)")
        }
        value = number
    }

    /// A number of seconds from 0 to 30 days.
    package func read(_ value: inout Double, _ key: Key, seconds: Bool) throws {
        var number = value
        do { try read(&number, key) } catch {
            throw GenWorkerError(.configuration, "\(name(key)) must be a number of seconds ≥ 0")
        }
        guard number >= 0, number <= 86400 * 30 else {
            throw GenWorkerError(.configuration, "\(name(key)) must be a number of seconds from 0 to 2592000, not \(number)")
        }
        value = number
    }

    package func read(_ value: inout Double, _ key: Key, _ range: ClosedRange<Double>, unit: String) throws {
        var number = value
        do { try read(&number, key) } catch {
            throw GenWorkerError(.configuration, "\(name(key)) must be a number of \(unit) from \(range.lowerBound) to \(range.upperBound)")
        }
        guard range.contains(number) else {
            throw GenWorkerError(
                .configuration, "\(name(key)) must be a number of \(unit) from \(range.lowerBound) to \(range.upperBound), not \(number)")
        }
        value = number
    }

    private func name(_ key: Key) -> String { Self.name(path + [key]) }

    package static func name(_ path: [CodingKey]) -> String {
        path.isEmpty ? "the config" : path.map(\.stringValue).joined(separator: ".")
    }

    package static func kind<T>(of _: T.Type) -> String {
        switch T.self {
        case is Bool.Type: "true or false"
        case is String.Type: "a string"
        case is [String].Type: "a list of strings"
        case is [String: String].Type: "a mapping of names to strings"
        default: "a mapping of keys to values"
        }
    }
}

/// A decoding error from outside a reader (the top level), naming its key.
package func explainConfigurationError(_ error: Error) -> String {
    func name(_ path: [CodingKey]) -> String { path.isEmpty ? "the config" : path.map(\.stringValue).joined(separator: ".") }
    switch error {
    case DecodingError.typeMismatch(_, let context), DecodingError.dataCorrupted(let context),
        DecodingError.valueNotFound(_, let context), DecodingError.keyNotFound(_, let context):
        return "\(name(context.codingPath)): \(context.debugDescription)"
    default:
        return "the config: \(error)"
    }
}

/// Any key of a YAML mapping, to list the keys a section was given.
package struct AnyKey: CodingKey {
    package var stringValue: String
    package var intValue: Int? { nil }
    package init(_ string: String) { stringValue = string }
    package init?(stringValue: String) { self.stringValue = stringValue }
    package init?(intValue: Int) { return nil }
}
