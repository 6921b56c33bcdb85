from accounts.roles import perm
from accounts.services import user_role


def roles(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"role": None, "can": {}}
    from accounts.roles import CAPABILITIES

    return {"role": user_role(user), "can": {c: user.has_perm(perm(c)) for c in CAPABILITIES}}
