#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A self-pipe: any thread calls ``signal()``, and a thread blocked in `poll()` on
/// ``readDescriptor`` (or in ``wait(timeout:)``) wakes at once. The AMQP connection's
/// owner thread polls it beside its socket, and a running job's supervisor beside the
/// child's pipes; neither side needs to know about the other.
public final class WakePipe: Sendable {
    /// Readable (for poll) after ``signal()``, until ``drain()``.
    public let readDescriptor: Int32
    private let writeDescriptor: Int32

    public init() {
        var fds: [Int32] = [-1, -1]
        // Without a pipe nothing can be woken; this only fails when the process is out of descriptors.
        if pipe(&fds) != 0 { fatalError("pipe() failed: errno \(errno)") }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        readDescriptor = fds[0]
        writeDescriptor = fds[1]
    }

    deinit {
        close(readDescriptor)
        close(writeDescriptor)
    }

    /// Safe from any thread; several signals before the owner looks count as one.
    public func signal() {
        var byte: UInt8 = 1
        _ = write(writeDescriptor, &byte, 1)
    }

    /// Consumes pending signals; returns whether there were any.
    @discardableResult
    public func drain() -> Bool {
        var buffer = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        var any = false
        while withUnsafeMutableBytes(of: &buffer, { read(readDescriptor, $0.baseAddress, $0.count) }) > 0 { any = true }
        return any
    }

    /// Blocks until ``signal()`` or `timeout`, then consumes pending signals. Returns whether
    /// it was signalled.
    @discardableResult
    public func wait(timeout: Duration) -> Bool {
        var fd = pollfd(fd: readDescriptor, events: Int16(POLLIN), revents: 0)
        _ = poll(&fd, 1, Self.milliseconds(timeout))
        return drain()
    }

    /// `duration` in whole milliseconds for poll(), rounded up so a short wait never spins.
    public static func milliseconds(_ duration: Duration) -> Int32 {
        guard duration > .zero else { return 0 }
        let (seconds, attoseconds) = duration.components
        let ms = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: ms)
    }
}
