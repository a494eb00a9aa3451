import XCTest

@testable import GenWorkerCore

/// Each slot its own block of `wan.gpus_per_job` devices; too few devices refused at start.
final class GPUAssignmentTests: XCTestCase {
    let eight = (0..<8).map { "GPU \($0): NVIDIA A100-SXM4-80GB (UUID: GPU-\($0)aa)" }.joined(separator: "\n") + "\n"

    func testTwoFourGPUJobsOnAnEightGPUBoxGetFourDevicesEach() throws {
        let plan = try GPUAssignment.plan(configured: [], visible: nil, nvidiaSMIList: eight, slots: 2, perJob: 4)
        XCTAssertEqual(plan.source, .nvidiaSMI)
        XCTAssertEqual(plan.slots, ["0,1,2,3", "4,5,6,7"])
    }

    func testTheWorkersOwnVisibleDevicesComeBeforeNvidiaSMIAndTheConfigBeforeBoth() throws {
        var plan = try GPUAssignment.plan(configured: [], visible: "4, 5,6,7", nvidiaSMIList: eight, slots: 2, perJob: 2)
        XCTAssertEqual(plan.source, .environment)
        XCTAssertEqual(plan.slots, ["4,5", "6,7"])
        plan = try GPUAssignment.plan(configured: ["GPU-a", "GPU-b"], visible: "4", nvidiaSMIList: eight, slots: 2, perJob: 1)
        XCTAssertEqual(plan.source, .configured)
        XCTAssertEqual(plan.slots, ["GPU-a", "GPU-b"])
    }

    func testMoreGPUsThanThereAreIsRefusedWithTheNumbers() {
        XCTAssertThrowsError(try GPUAssignment.plan(configured: [], visible: nil, nvidiaSMIList: eight, slots: 3, perJob: 4)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("worker.slots (3) × wan.gpus_per_job (4) needs 12 GPU(s); this machine has 8 (nvidia-smi -L"), text)
        }
        // An empty CUDA_VISIBLE_DEVICES hides every GPU: nothing to hand out.
        XCTAssertThrowsError(try GPUAssignment.plan(configured: [], visible: "", nvidiaSMIList: eight, slots: 1, perJob: 1))
    }

    func testWithNothingToSayWhichDevicesThereAreSlotsAreAssumedAndOneSlotIsLeftAlone() throws {
        var plan = try GPUAssignment.plan(configured: [], visible: nil, nvidiaSMIList: nil, slots: 1, perJob: 1)
        XCTAssertEqual(plan.source, .none)
        XCTAssertEqual(plan.slots, [nil])
        plan = try GPUAssignment.plan(configured: [], visible: nil, nvidiaSMIList: nil, slots: 2, perJob: 2)
        XCTAssertEqual(plan.source, .assumed)
        XCTAssertEqual(plan.slots, ["0,1", "2,3"])
    }

    /// An installed nvidia-smi that fails, hangs or lists nothing means a broken driver: before,
    /// the worker started on assumed devices and failed every job.
    func testAnNvidiaSMIThatFailsOrListsNoGPUIsRefused() {
        XCTAssertThrowsError(try GPUAssignment.plan(configured: [], visible: nil, nvidiaSMIList: "No devices were found\n", slots: 2, perJob: 2)) {
            XCTAssertTrue("\($0)".contains("nvidia-smi -L lists no GPU (No devices were found)"), "\($0)")
        }
        XCTAssertThrowsError(
            try GPUAssignment.plan(
                configured: [], visible: nil, nvidiaSMIList: nil, nvidiaSMIFailed: "nvidia-smi -L did not answer within 10 s", slots: 1, perJob: 1)
        ) { XCTAssertTrue("\($0)".contains("did not answer within 10 s"), "\($0)") }
        // Naming the devices starts anyway.
        XCTAssertEqual(
            try? GPUAssignment.plan(configured: ["0"], visible: nil, nvidiaSMIList: nil, nvidiaSMIFailed: "exited with 9", slots: 1, perJob: 1).slots,
            ["0"])
    }

    /// Lists CUDA would read otherwise than they are written.
    func testADeviceListedTwiceOrAMinusOneIsRefusedAndConfiguredEntriesAreSplit() throws {
        XCTAssertThrowsError(try GPUAssignment.plan(configured: ["0", "0"], visible: nil, nvidiaSMIList: nil, slots: 2, perJob: 1)) {
            XCTAssertTrue("\($0)".contains("GPU 0 is listed twice"), "\($0)")
        }
        XCTAssertThrowsError(try GPUAssignment.plan(configured: [], visible: "0,0", nvidiaSMIList: nil, slots: 2, perJob: 1))
        XCTAssertThrowsError(try GPUAssignment.plan(configured: [], visible: "-1", nvidiaSMIList: nil, slots: 1, perJob: 1))
        XCTAssertThrowsError(try GPUAssignment.plan(configured: [], visible: "0,-1,1", nvidiaSMIList: nil, slots: 2, perJob: 1)) {
            XCTAssertTrue("\($0)".contains("CUDA stops reading the list there"), "\($0)")
        }
        let split = try GPUAssignment.plan(configured: ["0,1", "2"], visible: nil, nvidiaSMIList: nil, slots: 3, perJob: 1)
        XCTAssertEqual(split.slots, ["0", "1", "2"])
    }
}
