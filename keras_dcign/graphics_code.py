"""The graphics code: the DC-IGN latent vector split into named groups.

This is the one place that says which latent units carry azimuth, elevation,
light and the intrinsic (shape/texture) properties of a face.

Two named layouts exist (`LAYOUTS`): the paper's (`"paper"`: one intrinsic
group) and one that splits the intrinsic units into a `shape` group and a
`texture` group (`"shape_texture"`), trained on the face generator's
SHAPE_ONLY and TEXTURE_ONLY batches. Both have 200 units.
"""

PAPER_GROUPS = (("azimuth", 1), ("elevation", 1), ("light", 1), ("intrinsic", 197))
# The paper's code with its 197 intrinsic units split into the face's shape and its texture.
SHAPE_TEXTURE_GROUPS = PAPER_GROUPS[:3] + (("shape", 98), ("texture", 99))


class GraphicsCode:
    """An ordered set of named latent groups with sizes.

    The paper's code has 200 units: z1 = azimuth, z2 = elevation,
    z3 = light azimuth and z4..z200 = intrinsic properties. Groups are
    addressed by name or by their integer id (their position).

    Args:
        groups: a sequence of `(name, size)` pairs or a dict `{name: size}`,
            in latent order. Names must be unique identifiers, sizes
            positive integers.

    Example:

    >>> from keras_dcign import GraphicsCode
    >>> code = GraphicsCode.paper()
    >>> code.size
    200
    >>> code.slice("light")
    slice(2, 3, None)
    >>> code.index("intrinsic")
    3
    >>> GraphicsCode.named("shape_texture").names
    ('azimuth', 'elevation', 'light', 'shape', 'texture')
    """

    def __init__(self, groups):
        if isinstance(groups, dict):
            groups = list(groups.items())
        groups = [tuple(g) for g in groups]
        if not groups:
            raise ValueError("GraphicsCode needs at least one group, got none.")
        names = []
        for entry in groups:
            if len(entry) != 2:
                raise ValueError(f"GraphicsCode group {entry!r} is not a (name, size) pair.")
            name, size = entry
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"GraphicsCode group name {name!r} is not a valid identifier.")
            if name in names:
                raise ValueError(f"GraphicsCode group name {name!r} appears twice.")
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(
                    f"GraphicsCode group {name!r} has size {size!r}; expected a positive integer."
                )
            names.append(name)
        self._groups = tuple((name, int(size)) for name, size in groups)

    @classmethod
    def paper(cls, intrinsic=197):
        """The paper's code: azimuth 1, elevation 1, light 1, intrinsic 197.

        Args:
            intrinsic: size of the intrinsic group (197 in the paper).
        """
        groups = list(PAPER_GROUPS[:3]) + [("intrinsic", intrinsic)]
        return cls(groups)

    @classmethod
    def shape_texture(cls):
        """Azimuth 1, elevation 1, light 1, shape 98, texture 99: the paper's 200 units with
        the intrinsic group split into the face's shape and its texture (albedo)."""
        return cls(SHAPE_TEXTURE_GROUPS)

    @classmethod
    def named(cls, name):
        """The code of a named layout: one of `LAYOUTS` (`"paper"`, `"shape_texture"`)."""
        if name not in LAYOUTS:
            raise ValueError(
                f"Unknown graphics-code layout {name!r}; expected one of {list(LAYOUTS)}."
            )
        return LAYOUTS[name]()

    @classmethod
    def of(cls, code):
        """A code from a `GraphicsCode`, a layout name, its config dict, or None (the paper's)."""
        if code is None:
            return cls.paper()
        if isinstance(code, GraphicsCode):
            return code
        if isinstance(code, str):
            return cls.named(code)
        if isinstance(code, dict) and "groups" in code:
            return cls.from_config(code)
        raise ValueError(
            f"code={code!r:.80} is invalid; expected a GraphicsCode, its config dict or one of "
            f"{list(LAYOUTS)}."
        )

    @property
    def layout(self):
        """The name of the layout this code is (a key of `LAYOUTS`), or None."""
        return next((name for name, make in LAYOUTS.items() if make() == self), None)

    @property
    def names(self):
        """The group names, in latent order."""
        return tuple(name for name, _ in self._groups)

    @property
    def sizes(self):
        """The group sizes, in latent order."""
        return tuple(size for _, size in self._groups)

    @property
    def size(self):
        """The total number of latent units."""
        return sum(self.sizes)

    def __len__(self):
        return len(self._groups)

    def __iter__(self):
        return iter(self._groups)

    def __contains__(self, name):
        return name in self.names

    def __eq__(self, other):
        return isinstance(other, GraphicsCode) and self._groups == other._groups

    def __hash__(self):
        return hash(self._groups)

    def __repr__(self):
        inner = ", ".join(f"{name}={size}" for name, size in self._groups)
        return f"GraphicsCode({inner})"

    def index(self, group):
        """The integer id of a group given by name or id."""
        if isinstance(group, str):
            if group not in self.names:
                raise ValueError(
                    f"Unknown graphics-code group {group!r}; expected one of {list(self.names)}."
                )
            return self.names.index(group)
        if isinstance(group, bool) or not isinstance(group, int):
            raise ValueError(f"Graphics-code group {group!r} is neither a name nor an integer id.")
        if not 0 <= group < len(self._groups):
            raise ValueError(
                f"Graphics-code group id {group} is out of range; expected 0.."
                f"{len(self._groups) - 1} for {list(self.names)}."
            )
        return group

    def name(self, group):
        """The name of a group given by name or id."""
        return self.names[self.index(group)]

    def slice(self, group):
        """The `slice` of latent units that belong to a group."""
        i = self.index(group)
        start = sum(self.sizes[:i])
        return slice(start, start + self.sizes[i])

    def group_of_unit(self):
        """A list mapping every latent unit to its group id."""
        return [i for i, size in enumerate(self.sizes) for _ in range(size)]

    def get_config(self):
        return {"groups": [[name, size] for name, size in self._groups]}

    @classmethod
    def from_config(cls, config):
        return cls(config["groups"])


def check_parts(code, **donors):
    """Refuses `shape_from=` / `texture_from=` images for a code without that group.

    Args:
        code: a `GraphicsCode`, its config dict or a layout name.
        **donors: `shape_from`, `texture_from` (None when not given).

    Raises:
        ValueError: one line naming the option and the code's groups.
    """
    code = GraphicsCode.of(code)
    for option, value in donors.items():
        group = option.removesuffix("_from")
        if value is not None and group not in code.names:
            raise ValueError(
                f"{option} needs a graphics code with a {group!r} group, and this model's groups "
                f"are {', '.join(code.names)}; expected a model trained with the shape_texture "
                "code (dcign train --code shape_texture)."
            )


# The named layouts, for `GraphicsCode.named` and the `code` recipe setting.
LAYOUTS = {"paper": GraphicsCode.paper, "shape_texture": GraphicsCode.shape_texture}
