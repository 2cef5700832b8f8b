"""The graphics code: the DC-IGN latent vector split into named groups.

This is the one place that says which latent units carry azimuth, elevation,
light and the intrinsic (shape/texture) properties of a face.
"""

PAPER_GROUPS = (("azimuth", 1), ("elevation", 1), ("light", 1), ("intrinsic", 197))


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
