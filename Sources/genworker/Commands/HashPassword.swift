import ArgumentParser
import Foundation
import GenWorkerWeb

struct HashPassword: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-password", abstract: "Read a password on stdin, print its bcrypt hash for dashboard.users.")

    func run() throws {
        guard let password = readLine(strippingNewline: true), !password.isEmpty else { throw ValidationError("give the password on stdin") }
        print(DashboardPassword.hash(password))
    }
}
