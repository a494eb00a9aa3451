/// Reads one section of the config for ``ConfigSection``: every key is optional (a missing or
/// null one gives nil, and the property keeps its default), values are checked with the full
/// key in the message, and a key the section does not declare is refused.
package struct ConfigReader {
    private let container: KeyedDecodingContainer<AnyKey>
    private let path: [CodingKey]

    package init(_ decoder: Decoder, known: [String]) throws {
        path = decoder.codingPath
        do { container = try decoder.container(keyedBy: AnyKey.self) } catch {
            throw GenWorkerError(.configuration, "\(Self.name(path)) must be a mapping of keys to values")
        }
        let known = Set(known)
        if let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
            throw GenWorkerError(.configuration, "unknown config key '\(Self.name(path + [AnyKey(unknown)]))'")
        }
    }

    /// Whether the section sets `key` (to anything but null).
    package func has(_ key: String) throws -> Bool { try container.contains(AnyKey(key)) && !container.decodeNil(forKey: AnyKey(key)) }

    /// Any decodable value (a section, a list, a string; a string may not be empty).
    package func value<T: Decodable>(_ key: String) throws -> T? {
        let value: T
        do {
            guard try has(key) else { return nil }
            value = try container.decode(T.self, forKey: AnyKey(key))
        } catch let error as GenWorkerError {
            throw error
        } catch {
            throw GenWorkerError(.configuration, "\(name(key)) must be \(Self.kind(of: T.self))")
        }
        if let text = value as? String, text.isEmpty { throw GenWorkerError(.configuration, "\(name(key)) must be a non-empty string") }
        return value
    }

    /// A whole number in `range`.
    package func number(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
        let number: Int?
        do { number = try value(key) } catch {
            throw GenWorkerError(.configuration, "\(name(key)) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        guard let number else { return nil }
        guard range.contains(number) else {
            throw GenWorkerError(.configuration, "\(name(key)) must be a whole number from \(range.lowerBound) to \(range.upperBound), not \(number)")
        }
        return number
    }

    /// A number of seconds from 0 to 30 days.
    package func seconds(_ key: String) throws -> Double? {
        let number: Double?
        do { number = try value(key) } catch {
            throw GenWorkerError(.configuration, "\(name(key)) must be a number of seconds ≥ 0")
        }
        guard let number else { return nil }
        guard number >= 0, number <= 86400 * 30 else {
            throw GenWorkerError(.configuration, "\(name(key)) must be a number of seconds from 0 to 2592000, not \(number)")
        }
        return number
    }

    /// A number of `unit` in `range`.
    package func number(_ key: String, _ range: ClosedRange<Double>, unit: String) throws -> Double? {
        let number: Double?
        do { number = try value(key) } catch {
            throw GenWorkerError(.configuration, "\(name(key)) must be a number of \(unit) from \(range.lowerBound) to \(range.upperBound)")
        }
        guard let number else { return nil }
        guard range.contains(number) else {
            throw GenWorkerError(
                .configuration, "\(name(key)) must be a number of \(unit) from \(range.lowerBound) to \(range.upperBound), not \(number)")
        }
        return number
    }

    private func name(_ key: String) -> String { Self.name(path + [AnyKey(key)]) }

    package static func name(_ path: [CodingKey]) -> String {
        path.isEmpty ? "the config" : path.map(\.stringValue).joined(separator: ".")
    }

    package static func kind<T>(of _: T.Type) -> String {
        switch T.self {
        case is Bool.Type: "true or false"
        case is String.Type, is String?.Type: "a string"
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
