// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title MonadStaking: a stand-in for Monad's staking precompile.
/// @notice Placed at Monad's precompile address 0x0000000000000000000000000000000000001000
///         with `anvil_setCode` (so no constructor runs and every slot starts at zero).
///         Selectors and event signatures are Monad's own (docs.monad.xyz, staking
///         precompile reference), so analytics written against this contract run
///         unchanged on Monad data. What is simplified, on purpose:
///         - stake counts from the block it is delegated (Monad activates it at an
///           epoch boundary; `activationEpoch` in the events is still `epoch + 1`);
///         - `addValidator` takes `payload = abi.encode(address authAddress, uint256 commission)`
///           and ignores the two signatures;
///         - rewards come only from `externalReward` and are shared pro rata by stake
///           (an accumulator scaled by 1e36, as on Monad); commission is recorded, not charged;
///         - `syscallOnEpochChange` is sent by the system address, impersonated on anvil.
///         `getValidatorStake` and `getDelegatorStake` are additions for convenience.
contract MonadStaking {
    address public constant SYSTEM_ADDRESS = address(type(uint160).max - 1);
    uint256 public constant ACCUMULATOR_DENOMINATOR = 1e36;
    uint256 public constant DUST_THRESHOLD = 1e9;
    uint256 public constant MAX_COMMISSION = 1e18;
    uint64 public constant WITHDRAWAL_DELAY = 1;

    struct Validator {
        address authAddress;
        uint256 stake;
        uint256 accRewardPerToken;
        uint256 commission;
        uint256 unclaimedRewards;
    }

    struct Delegator {
        uint256 stake;
        uint256 accRewardPerToken;
        uint256 unclaimedRewards;
    }

    struct WithdrawalRequest {
        uint256 amount;
        uint256 accRewardPerToken;
        uint64 withdrawEpoch;
    }

    uint64 private _epoch;
    uint64 private _validatorCount;
    mapping(uint64 => Validator) private _validators;
    mapping(uint64 => mapping(address => Delegator)) private _delegators;
    mapping(uint64 => mapping(address => mapping(uint8 => WithdrawalRequest))) private _withdrawals;

    event ValidatorCreated(uint64 indexed validatorId, address indexed authAddress, uint256 commission);
    event Delegate(uint64 indexed validatorId, address indexed delegator, uint256 amount, uint64 activationEpoch);
    event Undelegate(
        uint64 indexed validatorId, address indexed delegator, uint8 withdrawId, uint256 amount, uint64 activationEpoch
    );
    event Withdraw(uint64 indexed validatorId, address indexed delegator, uint8 withdrawId, uint256 amount, uint64 epoch);
    event ClaimRewards(uint64 indexed validatorId, address indexed delegator, uint256 amount, uint64 epoch);
    event ValidatorRewarded(uint64 indexed validatorId, address indexed from, uint256 amount, uint64 epoch);
    event EpochChanged(uint64 oldEpoch, uint64 newEpoch);

    error UnknownValidator(uint64 validatorId);
    error AmountBelowDust(uint256 amount);
    error CommissionTooHigh(uint256 commission);
    error InsufficientStake(uint256 stake, uint256 amount);
    error WithdrawalSlotInUse(uint8 withdrawId);
    error UnknownWithdrawal(uint8 withdrawId);
    error WithdrawalNotReady(uint64 epoch, uint64 readyEpoch);
    error NotSystem(address caller);
    error EpochNotIncreasing(uint64 current, uint64 proposed);
    error NoStake(uint64 validatorId);
    error PaymentFailed(address to, uint256 amount);

    // ------------------------------------------------------------------ writes

    function addValidator(bytes calldata payload, bytes calldata, bytes calldata)
        external
        payable
        returns (uint64 validatorId)
    {
        (address authAddress, uint256 commission) = abi.decode(payload, (address, uint256));
        if (commission > MAX_COMMISSION) revert CommissionTooHigh(commission);
        if (msg.value < DUST_THRESHOLD) revert AmountBelowDust(msg.value);
        validatorId = ++_validatorCount;
        Validator storage v = _validators[validatorId];
        v.authAddress = authAddress;
        v.commission = commission;
        emit ValidatorCreated(validatorId, authAddress, commission);
        _delegate(validatorId, authAddress, msg.value);
    }

    function delegate(uint64 validatorId) external payable returns (bool success) {
        _known(validatorId);
        if (msg.value < DUST_THRESHOLD) revert AmountBelowDust(msg.value);
        _delegate(validatorId, msg.sender, msg.value);
        return true;
    }

    function undelegate(uint64 validatorId, uint256 amount, uint8 withdrawId) external returns (bool success) {
        Validator storage v = _known(validatorId);
        Delegator storage d = _delegators[validatorId][msg.sender];
        if (amount == 0 || amount > d.stake) revert InsufficientStake(d.stake, amount);
        WithdrawalRequest storage w = _withdrawals[validatorId][msg.sender][withdrawId];
        if (w.amount != 0) revert WithdrawalSlotInUse(withdrawId);
        _settle(v, d);
        d.stake -= amount;
        v.stake -= amount;
        uint64 activation = _epoch + 1;
        w.amount = amount;
        w.accRewardPerToken = v.accRewardPerToken;
        w.withdrawEpoch = activation;
        emit Undelegate(validatorId, msg.sender, withdrawId, amount, activation);
        return true;
    }

    function withdraw(uint64 validatorId, uint8 withdrawId) external returns (bool success) {
        _known(validatorId);
        WithdrawalRequest storage w = _withdrawals[validatorId][msg.sender][withdrawId];
        uint256 amount = w.amount;
        if (amount == 0) revert UnknownWithdrawal(withdrawId);
        uint64 ready = w.withdrawEpoch + WITHDRAWAL_DELAY;
        if (_epoch < ready) revert WithdrawalNotReady(_epoch, ready);
        delete _withdrawals[validatorId][msg.sender][withdrawId];
        _pay(msg.sender, amount);
        emit Withdraw(validatorId, msg.sender, withdrawId, amount, _epoch);
        return true;
    }

    function claimRewards(uint64 validatorId) external returns (bool success) {
        Validator storage v = _known(validatorId);
        Delegator storage d = _delegators[validatorId][msg.sender];
        _settle(v, d);
        uint256 amount = d.unclaimedRewards;
        d.unclaimedRewards = 0;
        v.unclaimedRewards -= amount;
        if (amount != 0) _pay(msg.sender, amount);
        emit ClaimRewards(validatorId, msg.sender, amount, _epoch);
        return true;
    }

    /// @notice Adds `msg.value` to the validator's rewards, shared by its delegators pro rata.
    function externalReward(uint64 validatorId) external payable returns (bool success) {
        Validator storage v = _known(validatorId);
        if (msg.value < DUST_THRESHOLD) revert AmountBelowDust(msg.value);
        if (v.stake == 0) revert NoStake(validatorId);
        v.accRewardPerToken += (msg.value * ACCUMULATOR_DENOMINATOR) / v.stake;
        v.unclaimedRewards += msg.value;
        emit ValidatorRewarded(validatorId, msg.sender, msg.value, _epoch);
        return true;
    }

    function syscallOnEpochChange(uint64 newEpoch) external {
        if (msg.sender != SYSTEM_ADDRESS) revert NotSystem(msg.sender);
        if (newEpoch <= _epoch) revert EpochNotIncreasing(_epoch, newEpoch);
        emit EpochChanged(_epoch, newEpoch);
        _epoch = newEpoch;
    }

    // ------------------------------------------------------------------ views

    function getEpoch() external view returns (uint64 epoch, bool inEpochDelayPeriod) {
        return (_epoch, false);
    }

    function getValidatorStake(uint64 validatorId) external view returns (uint256) {
        return _validators[validatorId].stake;
    }

    function getDelegatorStake(uint64 validatorId, address delegator) external view returns (uint256) {
        return _delegators[validatorId][delegator].stake;
    }

    function getValidator(uint64 validatorId)
        external
        view
        returns (
            address authAddress,
            uint64 flags,
            uint256 stake,
            uint256 accRewardPerToken,
            uint256 commission,
            uint256 unclaimedRewards,
            uint256 consensusStake,
            uint256 consensusCommission,
            uint256 snapshotStake,
            uint256 snapshotCommission,
            bytes memory secpPubkey,
            bytes memory blsPubkey
        )
    {
        Validator storage v = _validators[validatorId];
        return (
            v.authAddress,
            0,
            v.stake,
            v.accRewardPerToken,
            v.commission,
            v.unclaimedRewards,
            v.stake,
            v.commission,
            v.stake,
            v.commission,
            "",
            ""
        );
    }

    function getDelegator(uint64 validatorId, address delegator)
        external
        view
        returns (
            uint256 stake,
            uint256 accRewardPerToken,
            uint256 unclaimedRewards,
            uint256 deltaStake,
            uint256 nextDeltaStake,
            uint64 deltaEpoch,
            uint64 nextDeltaEpoch
        )
    {
        Delegator storage d = _delegators[validatorId][delegator];
        uint256 pending = (d.stake * (_validators[validatorId].accRewardPerToken - d.accRewardPerToken))
            / ACCUMULATOR_DENOMINATOR;
        return (d.stake, d.accRewardPerToken, d.unclaimedRewards + pending, 0, 0, 0, 0);
    }

    function getWithdrawalRequest(uint64 validatorId, address delegator, uint8 withdrawId)
        external
        view
        returns (uint256 withdrawalAmount, uint256 accRewardPerToken, uint64 withdrawEpoch)
    {
        WithdrawalRequest storage w = _withdrawals[validatorId][delegator][withdrawId];
        return (w.amount, w.accRewardPerToken, w.withdrawEpoch);
    }

    // ------------------------------------------------------------------ internals

    function _known(uint64 validatorId) private view returns (Validator storage v) {
        if (validatorId == 0 || validatorId > _validatorCount) revert UnknownValidator(validatorId);
        return _validators[validatorId];
    }

    function _delegate(uint64 validatorId, address delegator, uint256 amount) private {
        Validator storage v = _validators[validatorId];
        Delegator storage d = _delegators[validatorId][delegator];
        _settle(v, d);
        d.stake += amount;
        v.stake += amount;
        emit Delegate(validatorId, delegator, amount, _epoch + 1);
    }

    /// @dev Credits the rewards accrued since the delegator's last stake change.
    function _settle(Validator storage v, Delegator storage d) private {
        uint256 acc = v.accRewardPerToken;
        if (d.stake != 0) {
            d.unclaimedRewards += (d.stake * (acc - d.accRewardPerToken)) / ACCUMULATOR_DENOMINATOR;
        }
        d.accRewardPerToken = acc;
    }

    function _pay(address to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert PaymentFailed(to, amount);
    }
}
