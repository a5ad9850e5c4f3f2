"""Butcher tableaux of the Runge–Kutta methods, with their orders and dense-output polynomials as data.

Each tableau declares its convergence ``order`` (and the order of its embedded error estimate), so the
tests can check every method's empirical order against what it claims.  Dense output is stored as a
matrix ``dense`` with one row per stage: the interpolant over a step of size ``h`` from ``y0`` is

    y(t0 + θ h) = y0 + h Σ_i k_i b_i(θ),   b_i(θ) = Σ_j dense[i][j] θ^(j+1),

which at θ = 1 reproduces the step's weights ``b``.  Methods without a published interpolant use the
cubic Hermite interpolant through (y0, f0) and (y1, f1), written in the same form.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

Row = tuple[float, ...]


@dataclass(frozen=True)
class ButcherTableau:
    """Coefficients of an explicit or diagonally implicit Runge–Kutta method.

    Parameters
    ----------
    name : str
        Registry name of the method.
    c : tuple of float
        Stage times as fractions of the step.
    a : tuple of tuple of float
        Strictly lower-triangular stage coefficients, row ``i`` holding ``a[i][:i]``.
    b : tuple of float
        Weights of the propagated solution.
    order : int
        Classical order of the propagated solution.
    b_error : tuple of float, optional
        ``b - b_hat`` for an embedded lower-order solution; ``None`` for fixed-step methods.
    error_order : int, optional
        Order of the embedded solution; the step-size controller uses ``1 / (error_order + 1)``.
    dense : tuple of tuple of float, optional
        Dense-output polynomial coefficients (see the module docstring).
    diagonal : float
        Diagonal coefficient γ of a (E)SDIRK method; 0 for explicit methods.
    """

    name: str
    c: Row
    a: tuple[Row, ...]
    b: Row
    order: int
    b_error: Row | None = None
    error_order: int | None = None
    dense: tuple[Row, ...] | None = None
    diagonal: float = 0.0
    # Secondary error weights (DOP853 combines a 5th- and a 3rd-order estimate).
    b_error_secondary: Row | None = None
    # Extra stages (c, a-row) that only dense output needs (DOP853).
    dense_extra_stages: tuple[tuple[float, Row], ...] = field(default=())
    dense_extra_weights: tuple[Row, ...] | None = None

    @functools.cached_property
    def a_terms(self) -> tuple[tuple[tuple[int, float], ...], ...]:
        """Non-zero ``(j, a_ij)`` of every row, precomputed so the stepping loops skip zeros for free."""
        return tuple(tuple((j, value) for j, value in enumerate(row) if value != 0.0) for row in self.a)

    @functools.cached_property
    def b_error_terms(self) -> tuple[tuple[int, float], ...]:
        """Non-zero ``(i, b_error_i)``."""
        return tuple((i, value) for i, value in enumerate(self.b_error or ()) if value != 0.0)

    @property
    def n_stages(self) -> int:
        return len(self.c)

    @property
    def adaptive(self) -> bool:
        return self.b_error is not None

    @property
    def implicit(self) -> bool:
        return self.diagonal != 0.0

    @property
    def fsal(self) -> bool:
        """First-same-as-last: the final stage is f(t + h, y_new), reused as the next step's first."""
        last = self.a[-1] if self.a else ()
        return (
            self.n_stages > 1
            and self.c[-1] == 1.0
            and len(last) == self.n_stages - 1
            and all(abs(x - y) < 1e-15 for x, y in zip(last, self.b[:-1]))
            and (self.b[-1] == 0.0 or self.implicit)
        )


def hermite_dense(b: Row, fsal_index: int) -> tuple[Row, ...]:
    """Cubic Hermite interpolant through (y0, f0), (y1, f1) in the stage-weight form.

    ``f0`` is stage 0 and ``f1`` the stage at ``fsal_index`` (which must be f(t + h, y_new)).
    y(θ) = y0 + h01(θ) (y1 - y0) + h h10(θ) f0 + h h11(θ) f1 with the Hermite basis
    h01 = 3θ² - 2θ³, h10 = θ - 2θ² + θ³, h11 = θ³ - θ².
    """
    rows = []
    for index, weight in enumerate(b):
        row = [0.0, 3.0 * weight, -2.0 * weight]
        if index == 0:
            row = [row[0] + 1.0, row[1] - 2.0, row[2] + 1.0]
        if index == fsal_index:
            row = [row[0], row[1] - 1.0, row[2] + 1.0]
        rows.append(tuple(row))
    return tuple(rows)


def _difference(first: Row, second: Row) -> Row:
    return tuple(x - y for x, y in zip(first, second))


# --- fixed-step explicit methods -------------------------------------------------------------------

EULER = ButcherTableau(name="euler", c=(0.0,), a=((),), b=(1.0,), order=1)

MIDPOINT = ButcherTableau(name="midpoint", c=(0.0, 0.5), a=((), (0.5,)), b=(0.0, 1.0), order=2)

HEUN = ButcherTableau(name="heun", c=(0.0, 1.0), a=((), (1.0,)), b=(0.5, 0.5), order=2)

RK4 = ButcherTableau(
    name="rk4",
    c=(0.0, 0.5, 0.5, 1.0),
    a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
    b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
    order=4,
)

# --- adaptive explicit methods ---------------------------------------------------------------------

# Bogacki–Shampine 3(2), FSAL, Hermite dense output (third order, matching the method).
_BOSH3_B = (2 / 9, 1 / 3, 4 / 9, 0.0)
BOSH3 = ButcherTableau(
    name="bosh3",
    c=(0.0, 0.5, 0.75, 1.0),
    a=((), (0.5,), (0.0, 0.75), (2 / 9, 1 / 3, 4 / 9)),
    b=_BOSH3_B,
    order=3,
    b_error=_difference(_BOSH3_B, (7 / 24, 1 / 4, 1 / 3, 1 / 8)),
    error_order=2,
    dense=hermite_dense(_BOSH3_B, fsal_index=3),
)

# Dormand–Prince 5(4), FSAL, with Shampine's quartic dense output (the optimum c6 variant).
_DOPRI5_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
DOPRI5 = ButcherTableau(
    name="dopri5",
    c=(0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    a=(
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        _DOPRI5_B[:6],
    ),
    b=_DOPRI5_B,
    order=5,
    b_error=(-71 / 57600, 0.0, 71 / 16695, -71 / 1920, 17253 / 339200, -22 / 525, 1 / 40),
    error_order=4,
    dense=(
        (1.0, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432),
        (0.0, 0.0, 0.0, 0.0),
        (0.0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799),
        (0.0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072),
        (0.0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632),
        (0.0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844),
        (0.0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423),
    ),
)

# Tsitouras 5(4) (2011), FSAL, with the paper's quartic interpolant expanded in powers of θ.
_TSIT5_B = (
    0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742,
    -3.290069515436081, 2.324710524099774, 0.0,
)
TSIT5 = ButcherTableau(
    name="tsit5",
    c=(0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0),
    a=(
        (),
        (0.161,),
        (-0.008480655492356989, 0.335480655492357),
        (2.8971530571054935, -6.359448489975075, 4.3622954328695815),
        (5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525),
        (5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401, -0.02826905039406838),
        _TSIT5_B[:6],
    ),
    b=_TSIT5_B,
    order=5,
    b_error=(
        0.00178001105222577714, 0.0008164344596567469, -0.007880878010261995, 0.1447110071732629,
        -0.5823571654525552, 0.45808210592918697, -1 / 66,
    ),
    error_order=4,
    dense=(
        (0.9999999999999998, -2.763706197274826, 2.9132554618219126, -1.0530884977290216),
        (0.0, 0.13169999999999998, -0.2234, 0.1017),
        (0.0, 3.930296236894751, -5.941033872131505, 2.490627285651253),
        (0.0, -12.411077166933676, 30.338188630282318, -16.548102889244902),
        (0.0, 37.50931341651104, -88.1789048947664, 47.37952196281928),
        (0.0, -27.896526289197286, 65.09189467479368, -34.87065786149661),
        (0.0, 1.5, -4.0, 2.5),
    ),
)

# Dormand–Prince 8(5,3) as in Hairer's DOP853: 12 stages plus f(t + h, y_new) as stage 13 (so FSAL),
# the combined 5th/3rd-order error estimate, and a 7th-order dense output with three extra stages.
_DOPRI8_C = (
    0.0, 0.05260015195876773, 0.0789002279381516, 0.1183503419072274, 0.2816496580927726,
    0.3333333333333333, 0.25, 0.3076923076923077, 0.6512820512820513, 0.6, 0.8571428571428571, 1.0, 1.0,
)
_DOPRI8_B = (
    0.054293734116568765, 0.0, 0.0, 0.0, 0.0, 4.450312892752409, 1.8915178993145003, -5.801203960010585,
    0.3111643669578199, -0.1521609496625161, 0.20136540080403034, 0.04471061572777259, 0.0,
)
DOPRI8 = ButcherTableau(
    name="dopri8",
    c=_DOPRI8_C,
    a=(
        (),
        (0.05260015195876773,),
        (0.0197250569845379, 0.0591751709536137),
        (0.02958758547680685, 0.0, 0.08876275643042054),
        (0.2413651341592667, 0.0, -0.8845494793282861, 0.924834003261792),
        (0.037037037037037035, 0.0, 0.0, 0.17082860872947386, 0.12546768756682242),
        (0.037109375, 0.0, 0.0, 0.17025221101954405, 0.06021653898045596, -0.017578125),
        (0.03709200011850479, 0.0, 0.0, 0.17038392571223998, 0.10726203044637328, -0.015319437748624402,
         0.008273789163814023),
        (0.6241109587160757, 0.0, 0.0, -3.3608926294469414, -0.868219346841726, 27.59209969944671,
         20.154067550477894, -43.48988418106996),
        (0.47766253643826434, 0.0, 0.0, -2.4881146199716677, -0.590290826836843, 21.230051448181193,
         15.279233632882423, -33.28821096898486, -0.020331201708508627),
        (-0.9371424300859873, 0.0, 0.0, 5.186372428844064, 1.0914373489967295, -8.149787010746927,
         -18.52006565999696, 22.739487099350505, 2.4936055526796523, -3.0467644718982196),
        (2.273310147516538, 0.0, 0.0, -10.53449546673725, -2.0008720582248625, -17.9589318631188,
         27.94888452941996, -2.8589982771350235, -8.87285693353063, 12.360567175794303, 0.6433927460157636),
        _DOPRI8_B[:12],
    ),
    b=_DOPRI8_B,
    order=8,
    b_error=(
        0.01312004499419488, 0.0, 0.0, 0.0, 0.0, -1.2251564463762044, -0.4957589496572502,
        1.6643771824549864, -0.35032884874997366, 0.3341791187130175, 0.08192320648511571,
        -0.022355307863886294, 0.0,
    ),
    b_error_secondary=(
        -0.18980075407240762, 0.0, 0.0, 0.0, 0.0, 4.450312892752409, 1.8915178993145003,
        -5.801203960010585, -0.4226823213237919, -0.1521609496625161, 0.20136540080403034,
        0.02265179219836082, 0.0,
    ),
    error_order=7,
    dense_extra_stages=(
        (0.1, (0.056167502283047954, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25350021021662483, -0.2462390374708025,
               -0.12419142326381637, 0.15329179827876568, 0.00820105229563469, 0.007567897660545699,
               -0.008298)),
        (0.2, (0.03183464816350214, 0.0, 0.0, 0.0, 0.0, 0.028300909672366776, 0.053541988307438566,
               -0.05492374857139099, 0.0, 0.0, -0.00010834732869724932, 0.0003825710908356584,
               -0.00034046500868740456, 0.1413124436746325)),
        (0.7777777777777778, (-0.42889630158379194, 0.0, 0.0, 0.0, 0.0, -4.697621415361164,
                              7.683421196062599, 4.06898981839711, 0.3567271874552811, 0.0, 0.0, 0.0,
                              -0.0013990241651590145, 2.9475147891527724, -9.15095847217987)),
    ),
    dense_extra_weights=(
        (-8.428938276109013, 0.0, 0.0, 0.0, 0.0, 0.5667149535193777, -3.0689499459498917, 2.38466765651207,
         2.117034582445028, -0.871391583777973, 2.2404374302607883, 0.6315787787694688,
         -0.08899033645133331, 18.148505520854727, -9.194632392478356, -4.436036387594894),
        (10.427508642579134, 0.0, 0.0, 0.0, 0.0, 242.28349177525817, 165.20045171727028, -374.5467547226902,
         -22.113666853125306, 7.733432668472264, -30.674084731089398, -9.332130526430229,
         15.697238121770845, -31.139403219565178, -9.35292435884448, 35.81684148639408),
        (19.985053242002433, 0.0, 0.0, 0.0, 0.0, -387.0373087493518, -189.17813819516758, 527.8081592054236,
         -11.57390253995963, 6.8812326946963, -1.0006050966910838, 0.7777137798053443,
         -2.778205752353508, -60.19669523126412, 84.32040550667716, 11.99229113618279),
        (-25.69393346270375, 0.0, 0.0, 0.0, 0.0, -154.18974869023643, -231.5293791760455, 357.6391179106141,
         93.40532418362432, -37.45832313645163, 104.0996495089623, 29.8402934266605, -43.53345659001114,
         96.32455395918828, -39.17726167561544, -149.72683625798564),
    ),
)

# --- stiff method ----------------------------------------------------------------------------------

# Kværnø's ESDIRK 3(2) (BIT 2004): L-stable, stiffly accurate, explicit first stage, four stages.
# γ is the root of 6γ³ - 18γ² + 9γ - 1 = 0 near 0.4359 that makes the method L-stable.
_GAMMA = 0.43586652150845899941601945
_A31 = (-4 * _GAMMA**2 + 6 * _GAMMA - 1) / (4 * _GAMMA)
_A32 = (-2 * _GAMMA + 1) / (4 * _GAMMA)
_A41 = (6 * _GAMMA - 1) / (12 * _GAMMA)
_A42 = -1 / ((24 * _GAMMA - 12) * _GAMMA)
_A43 = (-6 * _GAMMA**2 + 6 * _GAMMA - 1) / (6 * _GAMMA - 3)
_KVAERNO3_B = (_A41, _A42, _A43, _GAMMA)
KVAERNO3 = ButcherTableau(
    name="kvaerno3",
    c=(0.0, 2 * _GAMMA, 1.0, 1.0),
    # Rows hold the off-diagonal coefficients; every implicit stage adds γ h k_i.
    a=((), (_GAMMA,), (_A31, _A32), (_A41, _A42, _A43)),
    b=_KVAERNO3_B,
    order=3,
    b_error=(_A41 - _A31, _A42 - _A32, _A43 - _GAMMA, _GAMMA),
    error_order=2,
    dense=hermite_dense(_KVAERNO3_B, fsal_index=3),
    diagonal=_GAMMA,
)

TABLEAUX: dict[str, ButcherTableau] = {
    tableau.name: tableau
    for tableau in (EULER, MIDPOINT, HEUN, RK4, BOSH3, DOPRI5, TSIT5, DOPRI8, KVAERNO3)
}


def check_tableau_consistency(tableau: ButcherTableau, tolerance: float = 1e-12) -> list[str]:
    """Return the violated consistency conditions of ``tableau`` (an empty list when it is consistent).

    Checks the row-sum condition c_i = Σ_j a_ij (+ γ for implicit stages), Σ b = 1, Σ b_error = 0
    and, where dense output exists, that it reproduces ``b`` at θ = 1.
    """
    problems = []
    for index, (c_i, row) in enumerate(zip(tableau.c, tableau.a)):
        row_sum = math.fsum(row) + (tableau.diagonal if tableau.implicit and index > 0 else 0.0)
        if abs(row_sum - c_i) > tolerance * 10:
            problems.append(f"row {index}: sum(a) = {row_sum} but c = {c_i}")
    if abs(math.fsum(tableau.b) - 1.0) > tolerance:
        problems.append(f"sum(b) = {math.fsum(tableau.b)}")
    if tableau.b_error is not None and abs(math.fsum(tableau.b_error)) > tolerance * 10:
        problems.append(f"sum(b_error) = {math.fsum(tableau.b_error)}")
    if tableau.dense is not None:
        for index, (row, weight) in enumerate(zip(tableau.dense, tableau.b)):
            if abs(math.fsum(row) - weight) > 1e-9:
                problems.append(f"dense row {index} at θ=1 gives {math.fsum(row)}, expected b = {weight}")
    return problems
