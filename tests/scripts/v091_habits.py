"""A script written for byol-pytorch 0.9.1, in the habits of public code that uses it; it must run unchanged.

tests/test_habits.py runs it (runpy) and checks what it leaves behind. Nothing
here may be adapted to this library: it is what a 0.9.1 user already has.
"""

import torch
from torch import nn
from torchvision import transforms as T

from byol_pytorch.byol_pytorch import BYOL, RandomApply
from byol_pytorch.trainer import MockDataset

IMAGE_SIZE = 16


def small_net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 10))


augment_fn = nn.Sequential(
    RandomApply(T.ColorJitter(0.8, 0.8, 0.8, 0.2), p=0.3),
    T.RandomGrayscale(p=0.2),
    T.RandomHorizontalFlip(),
    RandomApply(T.GaussianBlur((3, 3), (1.0, 2.0)), p=0.2),
    T.RandomResizedCrop((IMAGE_SIZE, IMAGE_SIZE), antialias=True),
    T.Normalize(mean=torch.tensor([0.485, 0.456, 0.406]), std=torch.tensor([0.229, 0.224, 0.225])),
)


class SelfSupervisedLearner(nn.Module):  # what a Lightning module holding the learner looks like
    def __init__(self, net, **kwargs):
        super().__init__()
        self.learner = BYOL(net, **kwargs)

    def forward(self, images):
        return self.learner(images)


torch.manual_seed(0)
net = small_net()
model = SelfSupervisedLearner(net, image_size=IMAGE_SIZE, hidden_layer=-2, projection_size=16,
                              projection_hidden_size=32, augment_fn=augment_fn, use_simplicial_embeddings=False)
learner = model.learner
learner.to(torch.float64)  # as learner.cuda() would: the whole network follows, classifier included
assert net(torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.float64)).dtype == torch.float64

optimizer = torch.optim.Adam([
    {"params": learner.online_encoder.net.parameters(), "lr": 1e-3},
    {"params": list(learner.online_encoder.projector.parameters()) + list(learner.online_predictor.parameters()),
     "lr": 3e-3},
])
dataset = MockDataset(IMAGE_SIZE, 16)
total_steps = 4
base_tau = 0.99
betas = []
for step in range(total_steps):
    images = torch.stack([dataset[i] for i in range(8)]).double().sigmoid()  # MockDataset: randn, squashed
    loss = model(images)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    # tau scheduled by hand, as scripts written for 0.9 do
    learner.target_ema_updater.beta = 1 - (1 - base_tau) * (1 + torch.cos(torch.tensor(step / total_steps * 3.14159)).item()) / 2
    betas.append(learner.target_ema_updater.beta)
    learner.update_moving_average()

learner.eval()
x = torch.rand(4, 3, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.float64)
with torch.no_grad():
    projection, representation = learner.online_encoder(x)
    embedding = learner.online_encoder(x)[1]
    target_projection = learner.target_encoder(x)[0]
    rep_only = learner.online_encoder(x, return_projection=False)
    hidden = learner.online_encoder.get_representation(x)
    _, via_learner = learner(x, return_embedding=True)

# the backbone by prefix filter, as public loaders do
state = model.state_dict()
backbone = {k[len("learner.online_encoder.net."):]: v for k, v in state.items()
            if k.startswith("learner.online_encoder.net.")}
restored_net = small_net().double()
restored_net.load_state_dict(backbone)

# strict load of the whole wrapper module (Lightning's load_from_checkpoint does this)
reloaded = SelfSupervisedLearner(small_net(), image_size=IMAGE_SIZE, hidden_layer=-2, projection_size=16,
                                 projection_hidden_size=32, augment_fn=augment_fn, use_simplicial_embeddings=False)
reloaded.to(torch.float64)
reloaded.load_state_dict(state, strict=True)
