"""jaxkit.rl: environments against float64 transcriptions, replay, DDPG, intrinsic rewards, gate, reliability."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkit import rl
from jaxkit.rl import reliability as rel
from jaxkit.rl import replay

KEY = jax.random.key(0)


# ---------------------------------------------------------------- environments
def _mountain_car_np(x, v, a):
    """Gym's MountainCarContinuous-v0 step, transcribed in float64 numpy."""
    force = min(max(a, -1.0), 1.0)
    v = v + force * 0.0015 - 0.0025 * np.cos(3 * x)
    v = min(max(v, -0.07), 0.07)
    x = x + v
    x = min(max(x, -1.2), 0.6)
    if x == -1.2 and v < 0:
        v = 0.0
    term = bool(x >= 0.45 and v >= 0)
    reward = (100.0 if term else 0.0) - a**2 * 0.1
    return x, v, reward, term


def test_environments_take_gymnax_signatures_and_the_old_step_warns():
    """reset(key, params) / step(key, state, action, params) as gymnax; default_params is the environment; params
    change the physics; the same calls drive gymnax's environment; step(state, action) still works (deprecated) and
    gives the same transition."""
    import dataclasses

    from gymnax.environments.classic_control import continuous_mountain_car as gx

    for env in (rl.MountainCarContinuous(), rl.SparseNavigate()):
        obs, s = env.reset(KEY, env.default_params)
        a = jnp.ones(env.act_dim) * 0.5
        new = env.step(KEY, s, a, env.default_params)
        assert jax.tree.all(jax.tree.map(lambda x, y: bool(jnp.all(x == y)), new, env.step(KEY, s, a)))
        with pytest.warns(DeprecationWarning, match="gymnax"):
            old = env.step(s, a)
        assert jax.tree.all(jax.tree.map(lambda x, y: bool(jnp.all(x == y)), new, old))
    car = rl.MountainCarContinuous()
    _, s = car.reset(KEY)
    strong = dataclasses.replace(car, power=0.015)  # ten times the engine
    v_default = float(car.step(KEY, s, jnp.ones(1))[0][1])
    v_strong = float(car.step(KEY, s, jnp.ones(1), strong)[0][1])
    assert v_strong - v_default == pytest.approx(0.0135, abs=1e-6)
    # the same calls drive gymnax's own environment (its step resets by itself and returns (.., done, info))
    genv = gx.ContinuousMountainCar()
    obs, gs = genv.reset(KEY, genv.default_params)
    assert genv.step(KEY, gs, jnp.ones(1), genv.default_params)[0].shape == car.step(KEY, s, jnp.ones(1))[0].shape


def test_mountain_car_equals_gymnax_step_for_step_except_at_the_left_wall():
    """Cross-check against gymnax 1.0.1's ``MountainCarContinuous-v0`` (``step_env``, same states and actions).
    Equal to float32 rounding everywhere but one place: when the car hits the left wall (x clipped to -1.2 while
    moving left) Gym sets v = 0 (``if position == min_position and velocity < 0``, our transcription above) and we
    do too; gymnax instead zeroes v at the *goal* side (``position >= goal_position and velocity < 0``) and lets the
    car keep pushing into the wall -- a deviation of gymnax from Gym, asserted here so a change on either side shows."""
    from gymnax.environments.classic_control import continuous_mountain_car as gx

    genv, gp = gx.ContinuousMountainCar(), gx.ContinuousMountainCar().default_params
    env = rl.MountainCarContinuous()
    # the states a run visits: 64 episodes of 400 steps under random pushes (persisting 10-step actions, so the car
    # swings far enough to reach both the wall and the flag), actions beyond the bounds included
    rng = np.random.default_rng(0)
    n, t_max = 64, 400
    acts = np.repeat(rng.uniform(-2, 2, (n, t_max // 10)), 10, axis=1).astype(np.float32)
    step = jax.jit(jax.vmap(lambda p, a: env.step(KEY, rl.EnvState(p, jnp.int32(0)), a[None])))
    gstep = jax.jit(
        jax.vmap(
            lambda p, a: genv.step_env(jax.random.key(0), gx.EnvState(position=p[0], velocity=p[1], time=0), a, gp)
        )
    )
    phys = np.stack([rng.uniform(-0.6, -0.4, n), np.zeros(n)], 1).astype(np.float32)
    alive = np.ones(n, bool)
    wall = goal = 0
    for t in range(t_max):
        obs, _, rew, term, _ = step(jnp.asarray(phys), jnp.asarray(acts[:, t]))
        gobs, _, grew, gdone, _ = gstep(jnp.asarray(phys), jnp.asarray(acts[:, t]))
        obs, gobs = np.asarray(obs), np.asarray(gobs)
        at_wall = (obs[:, 0] == np.float32(-1.2)) & (np.asarray(gobs)[:, 1] < 0)
        ok = alive & ~at_wall
        np.testing.assert_allclose(obs[ok], gobs[ok], atol=1e-7, err_msg=f"step {t}")
        np.testing.assert_allclose(np.asarray(rew)[ok], np.asarray(grew)[ok], rtol=1e-6, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(term)[ok], np.asarray(gdone)[ok])
        hit = alive & at_wall  # Gym's rule (ours): stopped at the wall; gymnax: still moving left
        assert np.all(obs[hit, 1] == 0) and np.all(gobs[hit, 0] == obs[hit, 0])
        for i in np.flatnonzero(hit):
            ref = _mountain_car_np(float(phys[i, 0]), float(phys[i, 1]), float(acts[i, t]))
            assert ref[1] == 0.0 and ref[0] == pytest.approx(-1.2)
        wall += int(hit.sum())
        goal += int((alive & np.asarray(term)).sum())
        alive &= ~np.asarray(term)
        phys = obs
    assert wall > 20 and goal > 5, (wall, goal)  # both special cases were exercised


def test_mountain_car_matches_float64_transcription():
    env = rl.MountainCarContinuous()
    rng = np.random.default_rng(0)
    n = 400
    xs = rng.uniform(-1.25, 0.6, n)
    xs[:20] = -1.2  # the left wall
    xs[20:40] = rng.uniform(0.40, 0.45, 20)  # near the goal
    vs = rng.uniform(-0.07, 0.07, n)
    vs[:20] = -np.abs(vs[:20])  # moving into the wall: the car stops
    acts = rng.uniform(-2, 2, n)  # beyond the bounds: force clipped, cost not
    step = jax.jit(jax.vmap(lambda p, a: env.step(KEY, rl.EnvState(p, jnp.int32(5)), a)))
    obs, st, rew, term, trunc = step(
        jnp.asarray(np.stack([xs, vs], 1), jnp.float32), jnp.asarray(acts[:, None], jnp.float32)
    )
    ref = np.array(
        [
            _mountain_car_np(float(np.float32(x)), float(np.float32(v)), float(np.float32(a)))
            for x, v, a in zip(xs, vs, acts)
        ]
    )
    np.testing.assert_allclose(np.asarray(obs), ref[:, :2], atol=2e-6)
    np.testing.assert_allclose(np.asarray(rew), ref[:, 2], rtol=1e-5, atol=1e-5)
    near = np.abs(ref[:, 0] - 0.45) < 1e-5
    assert np.array_equal(np.asarray(term)[~near], ref[~near, 3].astype(bool))
    assert ref[:, 3].any() and (ref[:20, 1] == 0).sum() >= 15  # both branches exercised
    assert not np.asarray(trunc).any() and (np.asarray(st.t) == 6).all()


def test_mountain_car_reset_and_time_limit():
    env = rl.MountainCarContinuous(max_steps=3)
    obs, s = jax.vmap(env.reset)(jax.random.split(jax.random.key(0), 500))
    assert (np.asarray(obs[:, 0]) >= -0.6).all() and (np.asarray(obs[:, 0]) <= -0.4).all()
    assert (np.asarray(obs[:, 1]) == 0).all()
    s1 = jax.tree.map(lambda x: x[0], s)
    truncs = []
    for _ in range(3):
        _, s1, _, _, tr = env.step(KEY, s1, jnp.zeros(1))
        truncs.append(bool(tr))
    assert truncs == [False, False, True]


def test_sparse_navigate_lidar_goal_and_bounds():
    env = rl.SparseNavigate()
    obs = env._observe(jnp.zeros(2))
    # from the centre: 1 to the walls along the axes, sqrt(2) along the diagonals; / (2 sqrt 2)
    expect = np.array([1, np.sqrt(2)] * 4) / (2 * np.sqrt(2))
    np.testing.assert_allclose(np.asarray(obs[2:]), expect, rtol=1e-5)
    s = rl.EnvState(jnp.array([0.7, 0.7]), jnp.int32(0))
    o, s2, r, term, _ = env.step(KEY, s, jnp.array([1.0, 1.0]))
    assert float(r) == 1.0 and bool(term)
    o, s3, r, term, _ = env.step(KEY, rl.EnvState(jnp.array([-0.99, -0.99]), jnp.int32(0)), jnp.array([-5.0, 0.0]))
    assert float(r) == 0.0 and not bool(term) and np.allclose(np.asarray(s3.physics), [-1.0, -0.99])
    with pytest.raises(ValueError, match="action"):
        env.step(KEY, s, jnp.zeros(3))


def test_step_autoreset_returns_the_true_successor_and_a_fresh_episode():
    env = rl.MountainCarContinuous()
    s = rl.EnvState(jnp.array([0.449, 0.07]), jnp.int32(0))
    nxt, obs, s2, r, term, done = rl.step_autoreset(env, jax.random.key(1), s, jnp.array([1.0]))
    assert bool(term) and bool(done) and float(nxt[0]) >= 0.45
    assert -0.6 <= float(obs[0]) <= -0.4 and int(s2.t) == 0


# ---------------------------------------------------------------- replay
def test_replay_is_a_ring_and_samples_only_stored_items():
    buf = replay.init(4, {"x": jnp.zeros(2), "i": jnp.int32(0)})
    add = jax.jit(replay.add)
    for i in range(6):
        buf = add(buf, {"x": jnp.full(2, float(i)), "i": jnp.int32(i)})
    assert int(buf.size) == 4 and int(buf.position) == 2
    assert np.array_equal(np.asarray(buf.data["i"]), [4, 5, 2, 3])
    b = replay.sample(jax.random.key(0), buf, 1000)
    assert set(np.asarray(b["i"]).tolist()) == {2, 3, 4, 5}
    half = add(replay.init(4, {"x": jnp.zeros(2), "i": jnp.int32(0)}), {"x": jnp.ones(2), "i": jnp.int32(7)})
    assert set(np.asarray(replay.sample(jax.random.key(1), half, 100)["i"]).tolist()) == {7}
    with pytest.raises(ValueError, match="shape"):
        replay.add(buf, {"x": jnp.zeros(3), "i": jnp.int32(0)})
    with pytest.raises(ValueError, match="structure"):
        replay.add(buf, {"x": jnp.zeros(2)})
    with pytest.raises(ValueError, match="capacity"):
        replay.init(0, {"x": jnp.zeros(2)})


# ---------------------------------------------------------------- intrinsic rewards and the gate
def test_reward_functions_hand_computed():
    e = np.array([0.2, 0.2, 0.05, 0.3])
    eh = np.array([0.1, 0.1, 0.05, 0.31])
    np.testing.assert_allclose(rl.prediction_error_reward(e), e, rtol=1e-6)
    # 0.2/0.1 + 0.1/0.2 - 2 = 0.5; |e - e_hat| = 0.1 vs sigma
    np.testing.assert_allclose(rl.surprise_reward(e, eh, sigma=0.05), [0.5, 0.5, 0.0, 0.0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(rl.surprise_reward(e, eh, sigma=0.15), [0, 0, 0, 0])
    np.testing.assert_allclose(
        rl.surprise_reward(e, eh, sigma=0.005), [0.5, 0.5, 0, 0.3 / 0.31 + 0.31 / 0.3 - 2], rtol=1e-4, atol=1e-7
    )
    r, wins = rl.gate([0.1, 0.5, 0.1], [2.0, 0.5, 0.0], eps_fm=1.0, eps_mc=1.0)
    np.testing.assert_allclose(r, [np.tanh(2.0), np.tanh(0.5), np.tanh(0.1)], rtol=1e-6)
    assert np.asarray(wins).tolist() == [True, False, False]  # ties go to the prediction error
    r, wins = rl.gate(0.1, 2.0, eps_fm=1.0, eps_mc=0.01)
    np.testing.assert_allclose(r, np.tanh(0.1), rtol=1e-6)
    assert not bool(wins)
    kinds = [rl.agent_reward(k, 0.1, 2.0, 1.0, 0.5) for k in rl.AGENTS]
    np.testing.assert_allclose(kinds, [0.0, np.tanh(0.1), 0.5 * np.tanh(2.0), 0.5 * np.tanh(2.0)], rtol=1e-6)
    # a traced kind selects the same values
    traced = jax.jit(lambda k: rl.agent_reward(k, 0.1, 2.0, 1.0, 0.5))
    np.testing.assert_allclose([traced(i) for i in range(4)], kinds, rtol=1e-6)


def test_reward_bad_input():
    with pytest.raises(ValueError, match="sigma"):
        rl.surprise_reward(0.1, 0.1, sigma=0.0)
    with pytest.raises(ValueError, match="eps_mc"):
        rl.gate(0.1, 0.1, eps_fm=1.0, eps_mc=-1.0)
    with pytest.raises(ValueError, match="r_fm.*NaN"):
        rl.gate(np.nan, 0.1)
    with pytest.raises(ValueError, match="error_estimate"):
        rl.surprise_reward(0.1, np.nan, sigma=0.1)
    with pytest.raises(ValueError, match="kind"):
        rl.agent_reward("curious", 0.1, 0.1)
    with pytest.raises(ValueError, match="sigma"):
        rl.IntrinsicMotivation(2, 1, sigma=-1)
    with pytest.raises(ValueError, match="eps_fm"):
        rl.IntrinsicMotivation(2, 1, eps_fm=0)


def test_intrinsic_module_predicts_and_learns():
    env = rl.MountainCarContinuous()
    im = rl.IntrinsicMotivation(2, 1, hidden=(32, 32), forward_lr=1e-3, meta_lr=1e-3)
    k = jax.random.key(0)
    obs, s = jax.vmap(env.reset)(jax.random.split(k, 512))
    obs = obs.at[:, 1].set(jax.random.uniform(k, (512,), minval=-0.07, maxval=0.07))
    s = s.replace(physics=obs)
    act = jax.random.uniform(jax.random.key(1), (512, 1), minval=-1, maxval=1)
    nxt = jax.vmap(lambda st, a: env.step(KEY, st, a)[0])(s, act)
    data = {"obs": obs, "action": act, "next_obs": nxt}
    state = im.init(jax.random.key(2))
    r = im.rewards(state, obs, act, nxt)
    s_hat, e_hat = im.predict(state, obs, act)
    np.testing.assert_allclose(r["error"], np.mean((np.asarray(nxt) - np.asarray(s_hat)) ** 2, 1), rtol=1e-5)
    assert s_hat.shape == (512, 2) and e_hat.shape == (512,)

    def body(st, key):
        k1, k2 = jax.random.split(key)
        i1, i2 = jax.random.randint(k1, (32,), 0, 512), jax.random.randint(k2, (32,), 0, 512)
        st, m = im.update(st, jax.tree.map(lambda x: x[i1], data), jax.tree.map(lambda x: x[i2], data))
        return st, (m["forward_loss"], m["meta_loss"])

    state, (fl, ml) = jax.jit(lambda st: jax.lax.scan(body, st, jax.random.split(k, 600)))(state)
    fl = np.asarray(fl)
    assert fl[-50:].mean() < 0.1 * fl[:50].mean()
    r2 = im.rewards(state, obs, act, nxt)
    assert float(r2["error"].mean()) < 0.1 * float(r["error"].mean())
    with pytest.raises(ValueError, match="sizes 2 and 1"):
        im.rewards(state, obs, jnp.zeros((512, 2)), nxt)


# ---------------------------------------------------------------- DDPG
def test_ddpg_critic_regresses_to_reward_and_actor_climbs_it():
    ag = rl.DDPG(1, 1, hidden=(32, 32), gamma=0.0, actor_lr=1e-3, critic_lr=3e-3)
    state = ag.init(jax.random.key(0))
    n = 256
    obs = jax.random.uniform(jax.random.key(1), (n, 1), minval=-1, maxval=1)
    act = jax.random.uniform(jax.random.key(2), (n, 1), minval=-1, maxval=1)
    batch = {
        "obs": obs,
        "action": act,
        "reward": -((act[:, 0] - 0.3) ** 2),
        "next_obs": obs,
        "terminal": jnp.zeros(n, bool),
    }
    st, m = jax.jit(lambda s: jax.lax.scan(lambda s, _: ag.update(s, batch), s, None, length=1500))(state)
    q = ag.q_value(st.critic, obs, act)
    np.testing.assert_allclose(q, batch["reward"], atol=0.05)  # gamma = 0: Q(s, a) = r
    np.testing.assert_allclose(ag.policy(st.actor, obs), 0.3, atol=0.1)  # argmax_a of -(a - 0.3)^2
    # targets moved toward the online nets by tau per step
    assert np.allclose(jax.tree.leaves(rl.ddpg.soft_update({"a": 0.0}, {"a": 1.0}, 0.25)), [0.25])
    a = ag.act(st, obs[:3], jax.random.key(3), noise_std=10.0)
    assert a.shape == (3, 1) and float(jnp.max(jnp.abs(a))) <= 1.0
    with pytest.raises(ValueError, match="observation size 1"):
        ag.act(st, jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match="tau"):
        rl.DDPG(1, 1, tau=0.0)


def test_ddpg_target_uses_terminal_mask():
    ag = rl.DDPG(1, 1, hidden=(8,), gamma=0.9)
    st = ag.init(jax.random.key(0))
    obs = jnp.zeros((2, 1))
    b = {
        "obs": obs,
        "action": jnp.zeros((2, 1)),
        "reward": jnp.zeros(2),
        "next_obs": obs,
        "terminal": jnp.array([True, False]),
    }
    q_next = ag.q_value(st.target_critic, obs, ag.policy(st.target_actor, obs))
    # loss at the initial params equals the hand-built target's
    y = np.array([0.0, 0.9 * float(q_next[1])])
    expect = np.mean((np.asarray(ag.q_value(st.critic, obs, b["action"])) - y) ** 2)
    _, m = ag.update(st, b)
    np.testing.assert_allclose(m["critic_loss"], expect, rtol=1e-5)


# ---------------------------------------------------------------- the training loop
@pytest.fixture(scope="module")
def tiny_trainer():
    env = rl.MountainCarContinuous()
    return rl.Trainer(
        env,
        rl.DDPG(2, 1, hidden=(8, 8)),
        rl.IntrinsicMotivation(2, 1, hidden=(8, 8), sigma=1e-3),
        total_steps=60,
        buffer_size=64,
        warmup_steps=10,
    )


def test_vmapped_runs_equal_separate_runs(tiny_trainer):
    tr = tiny_trainer
    keys = jnp.stack([jax.random.key_data(jax.random.key(s)) for s in (0, 1, 2)])
    kinds = rl.kinds_index(["baseline", "mc", "gated"])
    states = tr.init_many(keys)
    half_many, logs_a = tr.run_many(states, kinds, 15)
    many, logs_b = tr.run_many(half_many, kinds, 15)
    logs = jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=1), logs_a, logs_b)
    for i in range(3):
        one, la = tr.run(tr.init(keys[i]), kinds[i], 15)
        one, lb = tr.run(one, kinds[i], 15)
        log1 = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), la, lb)
        for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(jax.tree.map(lambda x: x[i], many))):
            np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=2e-4, atol=1e-6)
        for k in rl.LOG_FIELDS:
            np.testing.assert_allclose(
                np.asarray(log1[k], np.float64), np.asarray(logs[k][i], np.float64), rtol=2e-4, atol=1e-6
            )
    assert np.asarray(many.step).tolist() == [30] * 3 and not np.asarray(many.diverged).any()
    assert np.asarray(logs["int_reward"][0]).max() == 0.0  # the baseline gets no intrinsic reward


def test_run_compiles_once_for_new_states(tiny_trainer):
    tr = tiny_trainer
    run = jax.jit(chex.assert_max_traces(tr._run, n=1), static_argnums=2)
    s = tr.init(jax.random.key(5))
    s, _ = run(s, 1, 5)
    s, _ = run(s, 3, 5)
    run(tr.init(jax.random.key(6)), 2, 5)


def test_a_diverging_run_is_flagged_without_touching_the_others(tiny_trainer):
    tr = tiny_trainer
    keys = jnp.stack([jax.random.key_data(jax.random.key(s)) for s in (0, 1)])
    kinds = rl.kinds_index(["gated", "gated"])
    states = tr.init_many(keys)
    clean, _ = tr.run_many(states, kinds, 15)
    poisoned = states.replace(
        agent=states.agent.replace(critic=jax.tree.map(lambda x: x.at[1].set(jnp.nan), states.agent.critic))
    )
    out, _ = tr.run_many(poisoned, kinds, 15)
    assert np.asarray(out.diverged).tolist() == [False, True]
    np.testing.assert_allclose(
        out.agent.actor["params"]["Dense_0"]["kernel"][0],
        clean.agent.actor["params"]["Dense_0"]["kernel"][0],
        rtol=1e-5,
    )
    # the diverged run stopped learning: its actor kept its initial weights
    np.testing.assert_array_equal(
        out.agent.actor["params"]["Dense_0"]["kernel"][1], states.agent.actor["params"]["Dense_0"]["kernel"][1]
    )


def test_trainer_bad_configuration():
    env = rl.MountainCarContinuous()
    with pytest.raises(ValueError, match="observation sizes"):
        rl.Trainer(env, rl.DDPG(3, 1), rl.IntrinsicMotivation(2, 1))
    with pytest.raises(ValueError, match="action sizes"):
        rl.Trainer(env, rl.DDPG(2, 1), rl.IntrinsicMotivation(2, 2))
    with pytest.raises(ValueError, match="noise_final"):
        rl.Trainer(env, rl.DDPG(2, 1), rl.IntrinsicMotivation(2, 1), noise_init=0.1, noise_final=0.5)
    with pytest.raises(ValueError, match="unknown agent"):
        rl.kinds_index(["gated", "greedy"])


def test_place_runs_single_device_is_identity():
    tree = {"a": jnp.arange(3.0)}
    placed, n = rl.place_runs(tree, jax.devices()[:1])
    assert n == 3 and placed is tree


def test_place_runs_shards_and_matches_single_device():
    from conftest import run_forced_devices

    run_forced_devices(
        2,
        """
import jax, jax.numpy as jnp, numpy as np
from jaxkit import rl
env = rl.MountainCarContinuous()
tr = rl.Trainer(env, rl.DDPG(2, 1, hidden=(8,)), rl.IntrinsicMotivation(2, 1, hidden=(8,)), total_steps=20,
                buffer_size=32, warmup_steps=5)
keys = jnp.stack([jax.random.key_data(jax.random.key(s)) for s in range(3)])
kinds = rl.kinds_index(["fm", "mc", "gated"])
st = tr.init_many(keys)
ref, _ = tr.run_many(st, kinds, 12)
placed, n = rl.place_runs(st)
kp, _ = rl.place_runs(jnp.asarray(kinds))
assert n == 3 and placed.step.shape[0] == 4 and len(placed.step.sharding.device_set) == 2
out, _ = tr.run_many(placed, kp, 12)
for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(out)):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64)[:3], rtol=2e-4, atol=1e-6)
print("ok")
""",
    )


# ---------------------------------------------------------------- reliability
def test_iqr_and_cvar_equal_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 41))
    np.testing.assert_allclose(rel.iqr(x, axis=1), np.percentile(x, 75, 1) - np.percentile(x, 25, 1), rtol=1e-5)
    for alpha in (0.05, 0.25, 1.0):
        # float64 numpy: values at or beyond the linearly interpolated quantile
        lo = [r[r <= np.percentile(r, 100 * alpha) + 1e-12].mean() for r in x]
        hi = [r[r >= np.percentile(r, 100 * (1 - alpha)) - 1e-12].mean() for r in x]
        np.testing.assert_allclose(rel.cvar(x, alpha, axis=1), lo, rtol=1e-5)
        np.testing.assert_allclose(rel.cvar(x, alpha, axis=1, tail="upper"), hi, rtol=1e-5)
    np.testing.assert_allclose(
        rel.risk_across_runs(x[:, -1], 0.3), x[:, -1][x[:, -1] <= np.percentile(x[:, -1], 30)].mean(), rtol=1e-5
    )
    np.testing.assert_allclose(
        rel.dispersion_across_runs(x), np.percentile(x, 75, 0) - np.percentile(x, 25, 0), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="alpha"):
        rel.cvar(x, 0.0)
    with pytest.raises(ValueError, match="tail"):
        rel.cvar(x, 0.1, tail="left")


def _released_cvar(array, tail, alpha):
    """Chan et al.'s ``compute_cvar`` (rl_reliability_metrics/metrics/metric_utils.py), transcribed in float64."""
    import scipy.stats

    array = np.asarray(array, np.float64)
    if tail == "lower":
        return array[array <= scipy.stats.scoreatpercentile(array, 100 * alpha)].mean()
    return array[array >= scipy.stats.scoreatpercentile(array, 100 * (1 - alpha))].mean()


def test_cvar_equals_the_released_compute_cvar_on_tied_and_continuous_data():
    rng = np.random.default_rng(4)
    data = [
        np.array([1.0, 1.0, 1.0, 2.0, 5.0, 7.0, 1.0]),  # ties at the VaR: all of them count
        np.array([0.0, 0.5, 0.5, 0.5, 2.0, 4.0]),
        np.round(rng.normal(size=40) * 2) / 2,
        rng.normal(size=33),
        rng.integers(0, 4, 25).astype(float),
        np.full(9, 3.0),
    ]
    for x in data:
        for alpha in (0.05, 0.1, 0.25, 0.5, 0.8, 1.0):
            for tail in ("lower", "upper"):
                np.testing.assert_allclose(
                    float(rel.cvar(x, alpha, tail=tail)),
                    _released_cvar(x, tail, alpha),
                    rtol=1e-6,
                    err_msg=f"{x} {alpha} {tail}",
                )
        np.testing.assert_allclose(float(rel.risk_across_runs(x, 0.5)), _released_cvar(x, "lower", 0.5), rtol=1e-6)
    # the kind of case: the rank rule averaged only floor(alpha (n-1)) + 1 values
    x = np.array([1.0, 1.0, 1.0, 2.0, 5.0, 7.0, 1.0])
    assert float(rel.cvar(x, 0.5)) == pytest.approx(1.0) and _released_cvar(x, "lower", 0.5) == 1.0
    with pytest.raises(ValueError, match="`x` is NaN"):
        rel.cvar(np.array([1.0, np.nan, 3.0]), 0.5)  # used to ignore the NaN
    assert np.isnan(float(jax.jit(lambda v: rel.cvar(v, 0.5))(jnp.array([1.0, jnp.nan, 3.0]))))


def test_across_time_measures_equal_numpy():
    rng = np.random.default_rng(1)
    c = np.cumsum(rng.normal(size=(4, 31)), axis=1)
    d = np.diff(c, axis=1)
    want = np.array(
        [[np.percentile(r[i : i + 6], 75) - np.percentile(r[i : i + 6], 25) for i in range(0, 30, 6)] for r in d]
    )
    np.testing.assert_allclose(rel.dispersion_across_time(c, 6), want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        rel.short_term_risk_across_time(c, 0.1), [r[r <= np.percentile(r, 10)].mean() for r in d], rtol=1e-4
    )
    dd = np.maximum.accumulate(c, axis=1) - c
    np.testing.assert_allclose(rel.drawdown(c), dd, atol=1e-5)
    np.testing.assert_allclose(
        rel.long_term_risk_across_time(c, 0.1), [r[r >= np.percentile(r, 90)].mean() for r in dd], rtol=1e-4
    )
    ma = np.stack([[r[max(0, t - 2) : t + 1].mean() for t in range(31)] for r in c])
    np.testing.assert_allclose(rel.moving_average(c, 3), ma, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="window"):
        rel.dispersion_across_time(c, 1)
    with pytest.raises(ValueError, match="curves"):
        rel.detrend(np.zeros(5))


def test_ou_noise_has_unit_stationary_std_and_geometric_autocorrelation():
    theta = 0.15

    def run(key):
        def body(x, k):
            x = rl.ou_step(k, x, theta)
            return x, x

        return jax.lax.scan(body, jnp.zeros(()), jax.random.split(key, 60_000))[1]

    xs = np.asarray(jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(0), 8)), np.float64)[:, 200:]  # burn-in
    assert np.std(xs) == pytest.approx(1.0, abs=0.03)
    for lag in (1, 5, 20):  # float64 reference: correlation (1 - theta)^lag
        r = np.mean([np.corrcoef(x[:-lag], x[lag:])[0, 1] for x in xs])
        assert r == pytest.approx((1 - theta) ** lag, abs=0.02), lag
    with pytest.raises(ValueError, match="`theta`"):
        rl.ou_step(jax.random.key(0), jnp.zeros(1), 0.0)


def test_trainer_with_ou_noise_keeps_the_process_and_restarts_it_each_episode():
    env = rl.MountainCarContinuous(max_steps=50)
    kw = dict(total_steps=120, warmup_steps=1000, buffer_size=200)
    mk = lambda noise: rl.Trainer(
        env, rl.DDPG(2, 1, hidden=(8,)), rl.IntrinsicMotivation(2, 1, hidden=(8,)), noise=noise, **kw
    )
    tr = mk("ou")
    st = tr.init(jax.random.key(0))
    st49, _ = tr.run(st, 0, 49)
    assert float(jnp.abs(st49.noise).max()) > 0  # a running process ...
    st50, logs = tr.run(st49, 0, 1)
    assert bool(logs["done"][0]) and float(jnp.abs(st50.noise).max()) == 0.0  # ... restarted at the time limit
    g, _ = mk("gaussian").run(mk("gaussian").init(jax.random.key(0)), 0, 49)
    assert float(jnp.abs(g.noise).max()) == 0.0
    with pytest.raises(ValueError, match="`noise` must be 'gaussian' or 'ou'"):
        mk("pink")
